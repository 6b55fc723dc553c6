// sqlite_cancel_bench - a heavy SQLite search cancelled by a timeout, and how soon it stops.
//
// The program demonstrates sqlite3_interrupt as smartasync's interrupter hook: the wrapped
// catalog_search runs a heavy prefix search on a blocking pool; a timer on the event loop
// cancels it (terminal, as smartasync::with_timeout does), smartasync stops the call's
// std::stop_token on the loop thread, and the std::stop_callback in catalog_search calls
// sqlite3_interrupt. It measures from the timer firing to the caller's completion handler
// running (the call has returned: smartasync's default waits for it), and, for comparison,
// how long the same search takes uninterrupted.
//
//   sqlite_cancel_bench [--records N] [--runs N] [--timeout-ms T]
//
// Distributed under the Boost Software License, Version 1.0.
#include "catalog/catalog_db.hpp"
#include "catalog/generator.hpp"
#include "catalog_search.hpp"
#include "temp_dir.hpp"

#include <CLI/CLI.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <future>
#include <thread>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;
using ms = std::chrono::duration<double, std::milli>;

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

const std::string heavy_query = "a* OR s* OR lib* OR c* OR d* OR p*";

} // namespace

int main(int argc, char** argv) {
  std::size_t records = 60000;
  int runs = 100;
  int timeout_ms = 5;
  CLI::App app{"Cancels a heavy SQLite search by a timeout (sqlite3_interrupt) and measures how soon it stops."};
  app.add_option("--records", records, "generated catalogue size")->check(CLI::Range(1000, 1'000'000))
      ->capture_default_str();
  app.add_option("--runs", runs, "how many searches to cancel")->check(CLI::Range(1, 100'000))->capture_default_str();
  app.add_option("--timeout-ms", timeout_ms, "the timeout (shorter than the search)")->check(CLI::Range(1, 60'000))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? EXIT_SUCCESS : 2;
  }

  try {
    catalog::testing::temp_dir dir;
    {
      catalog::catalog_db db(dir / "catalog.db", catalog::open_mode::read_write);
      auto sync = db.begin_sync();
      sync.add(catalog::generate_catalog(records));
      sync.commit();
    }
    catalog::connection_pool connections(dir / "catalog.db", 1);
    smartasync::blocking_pool pool{1, 16};
    auto search = sqlite_search::make_catalog_search(pool, connections);

    // The search uninterrupted, inline: what a cancellation saves.
    std::vector<double> full_ms;
    for (int i = 0; i < 5; ++i) {
      const auto t0 = clock_type::now();
      (void)search(heavy_query, 1000);
      full_ms.push_back(ms(clock_type::now() - t0).count());
    }

    asio::io_context io;
    auto work = asio::make_work_guard(io);
    std::thread loop([&] { io.run(); });
    std::vector<double> stopped_ms;
    int finished_first = 0;
    for (int i = 0; i < runs; ++i) {
      asio::cancellation_signal cancel;
      std::promise<void> completed;
      clock_type::time_point fired{}, handled{};
      bool aborted = false;
      asio::post(io, [&] {
        search.async_call(heavy_query, 1000,
                     asio::bind_cancellation_slot(cancel.slot(),
                                                  asio::bind_executor(io, [&](std::exception_ptr e, auto) {
                                                    handled = clock_type::now();
                                                    try {
                                                      if (e)
                                                        std::rethrow_exception(e);
                                                    } catch (const std::system_error& s) {
                                                      aborted = s.code() == asio::error::operation_aborted;
                                                    } catch (...) {
                                                    }
                                                    completed.set_value();
                                                  })));
      });
      asio::steady_timer timeout(io, std::chrono::milliseconds(timeout_ms));
      timeout.async_wait([&](asio::error_code ec) {
        if (ec)
          return;
        fired = clock_type::now();
        cancel.emit(asio::cancellation_type::terminal);
      });
      completed.get_future().wait();
      // Both handlers ran on the loop thread; read their times from it.
      std::promise<void> synced;
      asio::post(io, [&] { synced.set_value(); });
      synced.get_future().wait();
      if (!aborted || fired == clock_type::time_point{}) {
        ++finished_first; // the search won the race: nothing was cancelled
        continue;
      }
      stopped_ms.push_back(ms(handled - fired).count());
    }
    work.reset();
    loop.join();

    fmt::print("{} records, '{}' limit 1000: uninterrupted p50 {:.1f} ms\n", records, heavy_query,
               percentile(full_ms, 0.5));
    if (!stopped_ms.empty())
      fmt::print("{} searches cancelled after {} ms: timeout -> caller's handler ran (the search had returned) "
                 "p50 {:.2f} ms, p99 {:.2f} ms, max {:.2f} ms\n",
                 stopped_ms.size(), timeout_ms, percentile(stopped_ms, 0.5), percentile(stopped_ms, 0.99),
                 *std::max_element(stopped_ms.begin(), stopped_ms.end()));
    if (finished_first)
      fmt::print("{} searches finished before their timeout (not counted)\n", finished_first);
    return EXIT_SUCCESS;
  } catch (const std::exception& e) {
    fmt::print(stderr, "sqlite_cancel_bench: {}\n", e.what());
    return EXIT_FAILURE;
  }
}
