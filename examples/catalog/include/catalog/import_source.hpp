// catalog/import_source.hpp - the import tools' input: the package list, a file, or the generator.
// Header-only, for programs that use CLI11 (the import tools of this example and ../pg_search).
// Distributed under the Boost Software License, Version 1.0.
#ifndef CATALOG_IMPORT_SOURCE_HPP
#define CATALOG_IMPORT_SOURCE_HPP

#include "catalog/control_reader.hpp"
#include "catalog/generator.hpp"
#include "catalog/record.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace catalog {

/// Where an import reads its records: this machine's package list (`--from-apt`), a Debian
/// Packages file (`--from-file`, "-" for stdin) or the generator (`--generate N [--seed S]`),
/// exactly one of them.
class import_source {
public:
  /// Declares the options on `app`; `--generate` accepts `min_generate` to `max_generate`.
  void add_options(CLI::App& app, std::size_t min_generate, std::size_t max_generate) {
    apt_ = app.add_flag("--from-apt", from_apt_, "import this machine's package list (apt-cache dumpavail)");
    file_ = app.add_option("--from-file", from_file_, "import a Debian Packages file ('-' reads stdin)");
    generate_ = app.add_option("--generate", count_, "import N deterministic synthetic records")
                    ->check(CLI::Range(min_generate, max_generate));
    app.add_option("--seed", seed_, "generator seed")->needs(generate_);
    apt_->excludes(file_, generate_);
    file_->excludes(generate_);
  }

  /// After app.parse() (in its try block): refuses a command line that names no input.
  void require_one() const {
    if (!*apt_ && !*file_ && !*generate_)
      throw CLI::RequiredError("one of --from-apt, --from-file or --generate");
  }

  /// The input, as the tools' summary line names it.
  std::string origin() const {
    if (*apt_)
      return "apt-cache dumpavail";
    if (*file_)
      return from_file_;
    return fmt::format("generator (seed {})", seed_);
  }

  /// Reads every record, handing them to `add(std::span<const catalog_record>)` in batches of
  /// at most `batch_size`. A file's stanzas without a Package field are skipped, and said so
  /// on stderr after `program`'s name; a file that cannot be read throws std::runtime_error.
  template <typename Add>
  void read(std::size_t batch_size, Add&& add, const char* program) const {
    if (*apt_) {
      const auto records = load_apt_catalog();
      for (std::size_t i = 0; i < records.size(); i += batch_size)
        add(std::span(records).subspan(i, std::min(batch_size, records.size() - i)));
    } else if (*file_) {
      std::ifstream in;
      if (from_file_ != "-") {
        in.open(from_file_);
        if (!in)
          throw std::runtime_error(fmt::format("cannot read '{}'", from_file_));
      }
      control_reader reader(from_file_ == "-" ? std::cin : in);
      for (auto batch = reader.next_batch(batch_size); !batch.empty(); batch = reader.next_batch(batch_size))
        add(std::span<const catalog_record>(batch));
      if (reader.skipped())
        fmt::print(stderr, "{}: skipped {} stanzas without a Package field\n", program, reader.skipped());
    } else {
      std::vector<catalog_record> batch;
      for (std::size_t i = 0; i < count_; ++i) {
        batch.push_back(generate_record(i, seed_));
        if (batch.size() == batch_size || i + 1 == count_) {
          add(std::span<const catalog_record>(batch));
          batch.clear();
        }
      }
    }
  }

private:
  bool from_apt_ = false;
  std::string from_file_;
  std::size_t count_ = 0;
  std::uint64_t seed_ = 0;
  CLI::Option* apt_ = nullptr;
  CLI::Option* file_ = nullptr;
  CLI::Option* generate_ = nullptr;
};

} // namespace catalog

#endif // CATALOG_IMPORT_SOURCE_HPP
