// catalog_import - builds or refreshes a catalogue database from a package list.
//
// The program demonstrates the catalogue's snapshot sync: records are streamed into a staging
// table in batches, then one transaction applies the difference, so running it again with the
// same input reports everything unchanged, and an interrupted run changes nothing.
//
//   catalog_import --db FILE --from-apt              this machine's `apt-cache dumpavail`
//   catalog_import --db FILE --from-file PACKAGES    a Debian Packages file ("-" for stdin)
//   catalog_import --db FILE --generate N [--seed S] N synthetic records
//   catalog_import --help
//
// Distributed under the Boost Software License, Version 1.0.
#include "catalog/catalog_db.hpp"
#include "catalog/control_reader.hpp"
#include "catalog/generator.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>
#include <string>
#include <string_view>

namespace {

constexpr std::size_t batch_size = 2000;

} // namespace

int main(int argc, char** argv) {
  std::string db_file = "catalog.db";
  std::string from_file;
  std::size_t count = 0;
  std::uint64_t seed = 0;
  bool from_apt = false;
  bool allow_mass_delete = false;

  CLI::App app{"Builds or refreshes a catalogue database from a package list, in one snapshot sync.\n"
               "Exit status: 0 done, 1 failed, 2 bad command line, 3 refused (would delete more than half).",
               "catalog_import"};
  // A repeated option: the last one wins (scripts append overrides), except the repeatable ones.
  app.option_defaults()->always_capture_default()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--db", db_file, "catalogue database to create or refresh");
  auto* apt = app.add_flag("--from-apt", from_apt, "import this machine's package list (apt-cache dumpavail)");
  auto* file = app.add_option("--from-file", from_file, "import a Debian Packages file ('-' reads stdin)");
  auto* generate = app.add_option("--generate", count, "import N deterministic synthetic records")
                       ->check(CLI::Range(std::size_t{0}, std::size_t{100'000'000}));
  app.add_option("--seed", seed, "generator seed")->needs(generate);
  app.add_flag("--allow-mass-delete", allow_mass_delete,
               "commit even when more than half of the catalogue would be deleted (an empty input deletes all)");
  apt->excludes(file, generate);
  file->excludes(generate);
  try {
    app.parse(argc, argv);
    if (!*apt && !*file && !*generate)
      throw CLI::RequiredError("one of --from-apt, --from-file or --generate");
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? EXIT_SUCCESS : 2; // --help is a success; anything else is usage
  }
  const std::string source = *apt ? "apt" : *file ? "file" : "generate";

  try {
    const auto start = std::chrono::steady_clock::now();
    catalog::catalog_db db(db_file, catalog::open_mode::read_write);
    auto sync = db.begin_sync();
    std::string origin;

    if (source == "apt") {
      origin = "apt-cache dumpavail";
      const auto records = catalog::load_apt_catalog();
      for (std::size_t i = 0; i < records.size(); i += batch_size)
        sync.add(std::span(records).subspan(i, std::min(batch_size, records.size() - i)));
    } else if (source == "file") {
      origin = from_file;
      std::ifstream file;
      if (from_file != "-") {
        file.open(from_file);
        if (!file)
          throw std::runtime_error(fmt::format("cannot read '{}'", from_file));
      }
      catalog::control_reader reader(from_file == "-" ? std::cin : file);
      for (auto batch = reader.next_batch(batch_size); !batch.empty(); batch = reader.next_batch(batch_size))
        sync.add(batch);
      if (reader.skipped())
        fmt::print(stderr, "catalog_import: skipped {} stanzas without a Package field\n", reader.skipped());
    } else {
      origin = fmt::format("generator (seed {})", seed);
      std::vector<catalog::catalog_record> batch;
      for (std::size_t i = 0; i < count; ++i) {
        batch.push_back(catalog::generate_record(i, seed));
        if (batch.size() == batch_size || i + 1 == count) {
          sync.add(batch);
          batch.clear();
        }
      }
    }

    const std::size_t staged = sync.staged();
    // An empty or truncated input file must not silently empty the catalogue.
    std::optional<catalog::deletion_limit> limit;
    if (!allow_mass_delete)
      limit = catalog::deletion_limit{};
    const catalog::sync_counts c = sync.commit(limit);
    db.optimize();
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    fmt::print("{}: {} records from {}: {} added, {} updated, {} deleted, {} unchanged ({} ms)\n", db_file, staged,
               origin, c.added, c.updated, c.deleted, c.unchanged, ms.count());
    return EXIT_SUCCESS;
  } catch (const catalog::mass_deletion& e) {
    fmt::print(stderr, "catalog_import: {}; rerun with --allow-mass-delete if the input is right\n", e.what());
    return 3;
  } catch (const std::exception& e) {
    fmt::print(stderr, "catalog_import: {}\n", e.what());
    return EXIT_FAILURE;
  }
}
