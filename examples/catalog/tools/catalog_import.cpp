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
#include "catalog/import_source.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <exception>
#include <optional>
#include <string>

namespace {

constexpr std::size_t batch_size = 2000;

} // namespace

int main(int argc, char** argv) {
  std::string db_file = "catalog.db";
  catalog::import_source source;
  bool allow_mass_delete = false;

  CLI::App app{"Builds or refreshes a catalogue database from a package list, in one snapshot sync.\n"
               "Exit status: 0 done, 1 failed, 2 bad command line, 3 refused (would delete more than half).",
               "catalog_import"};
  // A repeated option: the last one wins (scripts append overrides), except the repeatable ones.
  app.option_defaults()->always_capture_default()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--db", db_file, "catalogue database to create or refresh");
  // Records are streamed into the staging table, so a large --generate never sits in memory.
  source.add_options(app, 0, 100'000'000);
  app.add_flag("--allow-mass-delete", allow_mass_delete,
               "commit even when more than half of the catalogue would be deleted (an empty input deletes all)");
  try {
    app.parse(argc, argv);
    source.require_one();
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? EXIT_SUCCESS : 2; // --help is a success; anything else is usage
  }

  try {
    const auto start = std::chrono::steady_clock::now();
    catalog::catalog_db db(db_file, catalog::open_mode::read_write);
    auto sync = db.begin_sync();
    source.read(batch_size, [&](std::span<const catalog::catalog_record> batch) { sync.add(batch); },
                "catalog_import");

    const std::size_t staged = sync.staged();
    // An empty or truncated input file must not silently empty the catalogue.
    std::optional<catalog::deletion_limit> limit;
    if (!allow_mass_delete)
      limit = catalog::deletion_limit{};
    const catalog::sync_counts c = sync.commit(limit);
    db.optimize();
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    fmt::print("{}: {} records from {}: {} added, {} updated, {} deleted, {} unchanged ({} ms)\n", db_file, staged,
               source.origin(), c.added, c.updated, c.deleted, c.unchanged, ms.count());
    return EXIT_SUCCESS;
  } catch (const catalog::mass_deletion& e) {
    fmt::print(stderr, "catalog_import: {}; rerun with --allow-mass-delete if the input is right\n", e.what());
    return 3;
  } catch (const std::exception& e) {
    fmt::print(stderr, "catalog_import: {}\n", e.what());
    return EXIT_FAILURE;
  }
}
