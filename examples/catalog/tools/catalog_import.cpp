// catalog_import - builds or refreshes a catalogue database from a package list.
//
// The program demonstrates the catalogue's snapshot sync: records are streamed into a staging
// table in batches, then one transaction applies the difference, so running it again with the
// same input reports everything unchanged, and an interrupted run changes nothing.
//
//   catalog_import --db FILE --from-apt              this machine's `apt-cache dumpavail`
//   catalog_import --db FILE --from-file PACKAGES    a Debian Packages file ("-" for stdin)
//   catalog_import --db FILE --generate N [--seed S] N synthetic records
//
// Distributed under the Boost Software License, Version 1.0.
#include "catalog/catalog_db.hpp"
#include "catalog/control_reader.hpp"
#include "catalog/generator.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>
#include <string>
#include <string_view>

namespace {

constexpr std::size_t batch_size = 2000;

int usage(const char* argv0) {
  fmt::print(stderr,
             "usage: {} [--db FILE] (--from-apt | --from-file PACKAGES | --generate N [--seed S])\n"
             "  --db FILE            catalogue database to create or refresh (default catalog.db)\n"
             "  --from-apt           import this machine's package list (apt-cache dumpavail)\n"
             "  --from-file PACKAGES import a Debian Packages file ('-' reads stdin)\n"
             "  --generate N         import N deterministic synthetic records (seed S, default 0)\n",
             argv0);
  return 2;
}

} // namespace

int main(int argc, char** argv) {
  std::string db_file = "catalog.db";
  std::string source;
  std::string from_file;
  std::size_t count = 0;
  std::uint64_t seed = 0;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string_view arg = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc)
          throw std::invalid_argument(fmt::format("{} needs a value", arg));
        return argv[++i];
      };
      if (arg == "--db")
        db_file = value();
      else if (arg == "--from-apt")
        source = "apt";
      else if (arg == "--from-file")
        source = "file", from_file = value();
      else if (arg == "--generate")
        source = "generate", count = std::stoull(value());
      else if (arg == "--seed")
        seed = std::stoull(value());
      else if (arg == "--help" || arg == "-h")
        return usage(argv[0]), 0;
      else
        throw std::invalid_argument(fmt::format("unknown argument '{}'", arg));
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "catalog_import: {}\n", e.what());
    return usage(argv[0]);
  }
  if (source.empty())
    return usage(argv[0]);

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
    const catalog::sync_counts c = sync.commit();
    db.optimize();
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    fmt::print("{}: {} records from {}: {} added, {} updated, {} deleted, {} unchanged ({} ms)\n", db_file, staged,
               origin, c.added, c.updated, c.deleted, c.unchanged, ms.count());
    return EXIT_SUCCESS;
  } catch (const std::exception& e) {
    fmt::print(stderr, "catalog_import: {}\n", e.what());
    return EXIT_FAILURE;
  }
}
