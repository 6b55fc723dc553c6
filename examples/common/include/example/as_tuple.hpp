// example/as_tuple.hpp - Asio's as_tuple completion token adapter, one spelling for every Asio.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_EXAMPLE_AS_TUPLE_HPP
#define SMARTASYNC_EXAMPLE_AS_TUPLE_HPP

// as_tuple left asio::experimental in Asio 1.24-1.26 (1.26 has both spellings), and the
// experimental header is gone from 1.36, so neither spelling compiles on the whole range the
// examples build with. The header's presence says which one this Asio has.
#if __has_include(<asio/as_tuple.hpp>)
#include <asio/as_tuple.hpp>
#else
#include <asio/experimental/as_tuple.hpp>
#endif

namespace example {

/// `example::as_tuple(token)`: completes with one std::tuple of the operation's arguments (its
/// error code first) instead of throwing, whichever namespace this Asio keeps it in.
#if __has_include(<asio/as_tuple.hpp>)
using asio::as_tuple;
#else
using asio::experimental::as_tuple;
#endif

} // namespace example

#endif // SMARTASYNC_EXAMPLE_AS_TUPLE_HPP
