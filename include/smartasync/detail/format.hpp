// smartasync/detail/format.hpp - fmt, included the way every smartasync header needs it.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_DETAIL_FORMAT_HPP
#define SMARTASYNC_DETAIL_FORMAT_HPP

// fmt 11.1's format.h calls malloc and free without including <cstdlib> (fixed in fmt 11.2,
// fmtlib/fmt#4477), and libc++ 21 no longer includes it on fmt's behalf.
#include <cstdlib>

// format.h, not core.h, although format.h costs about a tenth of a translation unit's compile
// time: with fmt 9's compiled library, a formatter writing through format_to (metrics.hpp)
// needs an instantiation of detail::vformat_to that clang names differently from the gcc-built
// libfmt, so a clang program including core.h alone fails to link.
#include <fmt/format.h>

#endif // SMARTASYNC_DETAIL_FORMAT_HPP
