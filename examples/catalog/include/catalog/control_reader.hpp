// catalog/control_reader.hpp - reads Debian package lists (RFC 822-style stanzas) as records.
// Distributed under the Boost Software License, Version 1.0.
#ifndef CATALOG_CONTROL_READER_HPP
#define CATALOG_CONTROL_READER_HPP

#include "catalog/record.hpp"

#include <cstddef>
#include <istream>
#include <optional>
#include <string>
#include <vector>

namespace catalog {

/// Streams catalog_records out of a Debian package list, such as `apt-cache dumpavail` prints.
/**
 * A stanza is a run of `Field: value` lines ended by a blank line; a line starting with a space
 * or tab continues the previous field. Field names are case-insensitive. Package, Version,
 * Section, Maintainer and Description are kept (a Description's continuation lines are joined
 * with '\n', a lone "." meaning an empty line); every other field is skipped. A stanza without
 * a Package field is skipped and counted.
 *
 * @par Example
 * @code
 * catalog::control_reader reader(std::cin);
 * while (auto record = reader.next()) use(*record);
 * @endcode
 */
class control_reader {
public:
  explicit control_reader(std::istream& in) : in_(in) {}

  /// The next record, or nullopt at the end of the input.
  std::optional<catalog_record> next();

  /// Up to `max` next records (fewer only at the end of the input).
  std::vector<catalog_record> next_batch(std::size_t max);

  /// Stanzas skipped so far because they had no Package field.
  std::size_t skipped() const noexcept { return skipped_; }
  /// Lines read so far.
  std::size_t lines() const noexcept { return lines_; }

private:
  std::istream& in_;
  std::string line_;
  std::size_t skipped_ = 0;
  std::size_t lines_ = 0;
};

/// Runs `apt-cache dumpavail` and reads its output: this machine's package catalogue.
/**
 * @throws std::runtime_error when apt-cache is not available or fails, or lists no packages.
 */
std::vector<catalog_record> load_apt_catalog();

} // namespace catalog

#endif // CATALOG_CONTROL_READER_HPP
