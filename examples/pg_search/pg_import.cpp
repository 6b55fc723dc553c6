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

#include "catalog/control_reader.hpp"
#include "catalog/generator.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
  std::string conninfo;
  std::string from_file;
  std::size_t count = 0;
  std::uint64_t seed = 0;
  bool from_apt = false;

  CLI::App app{"Loads the package catalogue into PostgreSQL in one transaction, replacing what it held.\n"
               "Exit status: 0 done, 1 failed, 2 bad command line.",
               "pg_import"};
  app.add_option("--pg", conninfo, "libpq connection string or URI, e.g. \"host=127.0.0.1 port=5432 dbname=postgres\"")
      ->required();
  auto* apt = app.add_flag("--from-apt", from_apt, "import this machine's package list (apt-cache dumpavail)");
  auto* file = app.add_option("--from-file", from_file, "import a Debian Packages file ('-' reads stdin)");
  auto* generate = app.add_option("--generate", count, "import N deterministic synthetic records")
                       ->check(CLI::Range(std::size_t{1}, std::size_t{10'000'000}));
  app.add_option("--seed", seed, "generator seed")->needs(generate);
  apt->excludes(file, generate);
  file->excludes(generate);
  try {
    app.parse(argc, argv);
    if (!*apt && !*file && !*generate)
      throw CLI::RequiredError("one of --from-apt, --from-file or --generate");
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? EXIT_SUCCESS : 2;
  }

  try {
    const auto start = std::chrono::steady_clock::now();
    std::vector<catalog::catalog_record> records;
    std::string origin;
    if (*apt) {
      origin = "apt-cache dumpavail";
      records = catalog::load_apt_catalog();
    } else if (*file) {
      origin = from_file;
      std::ifstream in;
      if (from_file != "-") {
        in.open(from_file);
        if (!in)
          throw std::runtime_error(fmt::format("cannot read '{}'", from_file));
      }
      catalog::control_reader reader(from_file == "-" ? std::cin : in);
      for (auto batch = reader.next_batch(4096); !batch.empty(); batch = reader.next_batch(4096))
        records.insert(records.end(), batch.begin(), batch.end());
      if (reader.skipped())
        fmt::print(stderr, "pg_import: skipped {} stanzas without a Package field\n", reader.skipped());
    } else {
      origin = fmt::format("generator (seed {})", seed);
      records = catalog::generate_catalog(count, seed);
    }
    // An empty input would empty the catalogue: refuse, as catalog_import's guard does.
    if (records.empty())
      throw std::runtime_error("no records in the input; the catalogue is unchanged");

    pg_search::connection db(pg_search::connection_options{.conninfo = conninfo, .application_name = "pg_import"});
    const std::size_t stored = pg_search::import_records(db, records);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    fmt::print("pg_import: {} records from {} ({} distinct names) in {} ms\n", records.size(), origin, stored,
               ms.count());
    return EXIT_SUCCESS;
  } catch (const std::exception& e) {
    fmt::print(stderr, "pg_import: {}\n", e.what());
    return EXIT_FAILURE;
  }
}
