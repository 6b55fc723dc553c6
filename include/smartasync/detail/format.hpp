// smartasync/detail/format.hpp - fmt, included the way every smartasync header needs it.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_DETAIL_FORMAT_HPP
#define SMARTASYNC_DETAIL_FORMAT_HPP

// fmt 11.1's format.h calls malloc and free without including <cstdlib> (fixed in fmt 11.2,
// fmtlib/fmt#4477), and libc++ 21 no longer includes it on fmt's behalf.
#include <cstdlib>

#include <fmt/format.h>

#endif // SMARTASYNC_DETAIL_FORMAT_HPP
