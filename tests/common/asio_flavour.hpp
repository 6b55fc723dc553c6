// The Asio flavour the tests are built with (standalone Asio or Boost.Asio), under one name.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_TESTS_ASIO_FLAVOUR_HPP
#define SMARTASYNC_TESTS_ASIO_FLAVOUR_HPP

#include <smartasync/config.hpp>

#if defined(SMARTASYNC_USE_BOOST_ASIO)
// The tests say asio::, as programs on standalone Asio do; a test program only ever has one
// flavour, so a global alias is safe here (the library itself never declares one).
namespace asio = ::boost::asio;
#endif

#endif // SMARTASYNC_TESTS_ASIO_FLAVOUR_HPP
