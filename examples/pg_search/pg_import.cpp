// pg_import - loads the package catalogue into PostgreSQL, replacing what it held.
//
// The program demonstrates the catalogue's other store: the same records as catalog_import
// (this machine's package list, a Debian Packages file, or the generator), sent with COPY in
// one transaction, so searches see the old catalogue until the new one is complete.
//
//   pg_import --pg "host=127.0.0.1 port=5432 dbname=postgres" --from-apt
//   pg_import --pg CONNINFO --generate N [--seed S]
//   pg_import --pg CONNINFO --from-file PACKAGES      ("-" for stdin)
//
// Distributed under the Boost Software License, Version 1.0.
#include "pg_catalog.hpp"

#include "catalog/import_source.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  std::string conninfo;
  catalog::import_source source;

  CLI::App app{"Loads the package catalogue into PostgreSQL in one transaction, replacing what it held.\n"
               "Exit status: 0 done, 1 failed, 2 bad command line.",
               "pg_import"};
  app.add_option("--pg", conninfo, "libpq connection string or URI, e.g. \"host=127.0.0.1 port=5432 dbname=postgres\"")
      ->required();
  // COPY sends the records from memory, so --generate is held to what fits.
  source.add_options(app, 1, 10'000'000);
  try {
    app.parse(argc, argv);
    source.require_one();
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? EXIT_SUCCESS : 2;
  }

  try {
    const auto start = std::chrono::steady_clock::now();
    std::vector<catalog::catalog_record> records;
    source.read(4096, [&](std::span<const catalog::catalog_record> batch) {
      records.insert(records.end(), batch.begin(), batch.end());
    }, "pg_import");
    // An empty input would empty the catalogue: refuse, as catalog_import's guard does.
    if (records.empty())
      throw std::runtime_error("no records in the input; the catalogue is unchanged");

    pg_search::connection db(pg_search::connection_options{.conninfo = conninfo, .application_name = "pg_import"});
    const std::size_t stored = pg_search::import_records(db, records);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    fmt::print("pg_import: {} records from {} ({} distinct names) in {} ms\n", records.size(), source.origin(),
               stored, ms.count());
    return EXIT_SUCCESS;
  } catch (const std::exception& e) {
    fmt::print(stderr, "pg_import: {}\n", e.what());
    return EXIT_FAILURE;
  }
}
