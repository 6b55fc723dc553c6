// pg_search_bench - offloaded vs inline on PostgreSQL: search throughput and /health latency.
//
// The program demonstrates, with numbers, what `co_await search.async_call(q, n)` buys over calling
// `search(q, n)` on the loop when the blocking call waits on a database server: the load driver
// of sqlite_search_bench (load_bench.hpp), given the PostgreSQL backend.
//
//   pg_search_bench --pg CONNINFO [--clients N] [--threads N] [--seconds S] [--quick]
//
// The catalogue must be imported first (pg_import).
//
// Distributed under the Boost Software License, Version 1.0.
#include "pg_catalog_search.hpp"

#include "load_bench.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace {

// Prefix queries match a large part of the catalogue: ts_rank over thousands of rows, the
// "slow query" of a real search box (the same letters as sqlite_search_bench's).
const std::vector<std::string> queries{"lib:*", "a:*", "s:*", "p:*", "c:*", "d:* | e:*", "m:*", "t:*", "g:*", "n:*"};

} // namespace

int main(int argc, char** argv) {
  std::string conninfo;
  int clients = 16;
  std::size_t threads = 4;
  double seconds = 10;
  bool quick = false;
  CLI::App app{"Offloaded vs inline on PostgreSQL: search throughput and /health latency of the search server."};
  app.add_option("--pg", conninfo, "libpq connection string or URI (catalogue imported with pg_import)")->required();
  auto* clients_option =
      app.add_option("--clients", clients, "concurrent search clients")->check(CLI::Range(1, 512))->capture_default_str();
  app.add_option("--threads", threads, "blocking-pool threads (one connection each)")->check(CLI::Range(1, 256))
      ->capture_default_str();
  auto* seconds_option = app.add_option("--seconds", seconds, "measured seconds per mode")
                             ->check(CLI::Range(0.5, 3600.0))->capture_default_str();
  app.add_flag("--quick", quick, "smoke run: 1.5 s and 8 clients unless given");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? EXIT_SUCCESS : 2;
  }
  if (quick) {
    if (seconds_option->count() == 0)
      seconds = 1.5;
    if (clients_option->count() == 0)
      clients = 8;
  }

  try {
    using namespace sqlite_search::bench;
    pg_search::connection_options options{.conninfo = conninfo, .application_name = "pg_search_bench"};
    std::vector<double> alone;
    {
      pg_search::connection db(options);
      fmt::print("catalogue: {} records; {} clients, {} pool threads, {:.1f} s per mode, {} hardware threads\n\n",
                 pg_search::count_records(db), clients, threads, seconds, std::thread::hardware_concurrency());
      for (int round = 0; round < 3; ++round)
        for (const auto& q : queries) {
          const auto t0 = clock_type::now();
          (void)pg_search::search(db, q, 10);
          alone.push_back(ms(clock_type::now() - t0).count());
        }
    }
    fmt::print("one search alone (queries: {}): p50 {:.1f} ms, max {:.1f} ms\n\n", fmt::join(queries, ", "),
               percentile(alone, 0.5), *std::max_element(alone.begin(), alone.end()));

    std::vector<mode_result> results;
    for (const bool inline_search : {false, true}) {
      pg_search::connection_pool connections(options, threads);
      smartasync::blocking_pool pool{threads, 1024};
      // Wrapped per mode, so each mode's first inline call is reported.
      auto search = smartasync::smart_async(pool, pg_search::pg_catalog_search{&connections},
                                            {.name = inline_search ? "pg catalog search (inline run)" : "pg catalog search"});
      results.push_back(run_load(sqlite_search::make_backend(search), inline_search, queries, clients, seconds));
    }
    print_load_table(results);
    const bool ok = results[0].errors == 0 && results[1].errors == 0 && results[0].searches > 0;
    return ok ? EXIT_SUCCESS : EXIT_FAILURE;
  } catch (const std::exception& e) {
    fmt::print(stderr, "pg_search_bench: {}\n", e.what());
    return EXIT_FAILURE;
  }
}
