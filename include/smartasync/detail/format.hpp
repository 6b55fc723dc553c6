// smartasync/detail/format.hpp - fmt, included the way every smartasync header needs it.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_DETAIL_FORMAT_HPP
#define SMARTASYNC_DETAIL_FORMAT_HPP

// fmt 11.1's format.h calls malloc and free without including <cstdlib> (fixed in fmt 11.2,
// fmtlib/fmt#4477), and libc++ 21 no longer includes it on fmt's behalf.
#include <cstdlib>

// core.h, not format.h: every header includes this one, and format.h costs about a tenth of a
// translation unit's compile time. The library's formatters therefore never call a member that
// only format.h defines (fmt 9's formatter<string_view>::format): they write through format_to.
#include <fmt/core.h>

#endif // SMARTASYNC_DETAIL_FORMAT_HPP
