// smartasync/detail/format.hpp - fmt, included the way every smartasync header needs it.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_DETAIL_FORMAT_HPP
#define SMARTASYNC_DETAIL_FORMAT_HPP

// fmt 11.1's format.h calls malloc and free without including <cstdlib> (fixed in fmt 11.2,
// fmtlib/fmt#4477), and libc++ 21 no longer includes it on fmt's behalf.
#include <cstdlib>

// format.h, not core.h: fmt 9's core.h declares formatter<string_view>::format, which the
// formatters in metrics.hpp and diagnostics.hpp inherit, but only format.h defines it (with the
// compiled fmt, a program including core.h alone fails to link).
#include <fmt/format.h>

#endif // SMARTASYNC_DETAIL_FORMAT_HPP
