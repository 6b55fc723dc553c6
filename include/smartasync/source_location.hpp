// smartasync/source_location.hpp - std::source_location, where the toolchain has it.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_SOURCE_LOCATION_HPP
#define SMARTASYNC_SOURCE_LOCATION_HPP

#include "smartasync/config.hpp"

#include <cstdint>
#include <version>

#if defined(__cpp_lib_source_location)
#include <source_location>
#endif

namespace SMARTASYNC_NAMESPACE {

#if defined(__cpp_lib_source_location)

/// Where a wrapper was created or a facility was misused.
using source_location = std::source_location;

#else

// HACK(clang 14 + libstdc++ 12): libstdc++'s <source_location> needs
// __builtin_source_location, which clang 14 lacks. The older builtins below exist in both
// compilers and, as default arguments, are evaluated at the caller, like the real thing.
/// Where a wrapper was created or a facility was misused (std::source_location's interface).
class source_location {
public:
  /// The caller's location: call with no argument (the defaults are evaluated where it is called).
  static constexpr source_location current(const char* file = __builtin_FILE(),
                                           const char* function = __builtin_FUNCTION(),
                                           std::uint_least32_t line = __builtin_LINE(),
                                           std::uint_least32_t column = __builtin_COLUMN()) noexcept {
    source_location here;
    here.file_ = file;
    here.function_ = function;
    here.line_ = line;
    here.column_ = column;
    return here;
  }

  constexpr source_location() noexcept = default;
  /// The source file's name.
  constexpr const char* file_name() const noexcept { return file_; }
  /// The enclosing function's name.
  constexpr const char* function_name() const noexcept { return function_; }
  /// The line number (from 1).
  constexpr std::uint_least32_t line() const noexcept { return line_; }
  /// The column number.
  constexpr std::uint_least32_t column() const noexcept { return column_; }

private:
  const char* file_ = "";
  const char* function_ = "";
  std::uint_least32_t line_ = 0;
  std::uint_least32_t column_ = 0;
};

#endif

} // namespace smartasync

#endif // SMARTASYNC_SOURCE_LOCATION_HPP
