// pg_cancel_bench - a slow query (pg_sleep) cancelled by a timeout, and how soon the database
// server stops running it.
//
// The program demonstrates cancellation that reaches the query: a wrapped `SELECT pg_sleep(30)`
// runs on a blocking pool, and a timer on the event loop cancels it (Asio per-operation
// cancellation, terminal, as smartasync::with_timeout does). smartasync stops the call's
// std::stop_token on the timer's thread; the std::stop_callback registered by connection::exec
// calls PQcancel there, and the server ends the query. A second connection watches
// pg_stat_activity to confirm it, and measures from the timeout firing to
//   - "gone":    the query no longer active in pg_stat_activity;
//   - "resumed": the caller's completion handler ran on the loop (operation_aborted).
//
//   pg_cancel_bench --pg CONNINFO [--runs N] [--timeout-ms T]     (N <= 5 prints each run)
//
// Distributed under the Boost Software License, Version 1.0.
#include "pg_catalog.hpp"

#include <smartasync/smartasync.hpp>

#include <CLI/CLI.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

struct run_record {
  std::atomic<int> pid{0};
  std::atomic<bool> stopped{false};
  clock_type::time_point stopped_at{};   // written before `stopped` is set
  clock_type::time_point resumed_at{};   // written by the completion handler, before `completed`
  std::string outcome;
  std::string call_error; // what the call threw, written before it returns
};

// The slow call: the stop_callback registered by connection::exec cancels the query.
struct slow_query {
  pg_search::connection_pool* connections;

  void operator()(std::stop_token stop, double seconds, run_record* record) const {
    auto db = connections->acquire();
    record->pid.store(db->backend_pid(), std::memory_order_release);
    const std::string param = fmt::format("{}", seconds);
    try {
      db->exec("SELECT pg_sleep($1::float8)", std::span(&param, 1), std::move(stop));
    } catch (const std::exception& e) {
      record->call_error = e.what();
      throw;
    }
  }
};

// What pg_stat_activity says the backend `pid` runs: "" when it runs no pg_sleep.
std::string activity(pg_search::connection& watcher, int pid) {
  const std::string p = std::to_string(pid);
  const auto r = watcher.exec("SELECT state || ': ' || query FROM pg_stat_activity "
                              "WHERE pid = $1::int AND state = 'active' AND query LIKE '%pg_sleep%'",
                              std::span(&p, 1));
  return r.rows() ? std::string(r.text(0, 0)) : std::string();
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

} // namespace

int main(int argc, char** argv) {
  std::string conninfo;
  int runs = 1;
  int timeout_ms = 200;
  CLI::App app{"Cancels a slow query (pg_sleep 30 s) by a timeout and measures how soon PostgreSQL stops it."};
  app.add_option("--pg", conninfo, "libpq connection string or URI")->required();
  app.add_option("--runs", runs, "how many queries to cancel")->check(CLI::Range(1, 10'000))->capture_default_str();
  app.add_option("--timeout-ms", timeout_ms, "the timeout")->check(CLI::Range(1, 60'000))->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? EXIT_SUCCESS : 2;
  }

  try {
    pg_search::connection_pool connections({.conninfo = conninfo, .application_name = "pg_cancel_bench"}, 1);
    pg_search::connection watcher({.conninfo = conninfo, .application_name = "pg_cancel_bench watcher"});
    smartasync::blocking_pool pool{1, 16};
    auto sleep = smartasync::smart_async(pool, slow_query{&connections}, {.name = "pg_sleep"});

    asio::io_context io;
    auto work = asio::make_work_guard(io);
    std::thread loop([&] { io.run(); });

    // The connection is opened by the first call: open it now, outside the measurement.
    run_record warm_up;
    sleep(0.0, &warm_up);

    std::vector<double> gone_ms, resumed_ms;
    int failures = 0, early = 0;
    for (int i = 0; i < runs; ++i) {
      run_record record;
      // 1. The call, and a timeout on the loop thread that cancels it (terminal: the call
      //    gets its stop request; its handler runs once the call has returned).
      asio::cancellation_signal cancel;
      std::promise<void> completed;
      auto done = completed.get_future();
      asio::post(io, [&] {
        sleep.async_call(30.0, &record,
                    asio::bind_cancellation_slot(
                        cancel.slot(), asio::bind_executor(io, [&](std::exception_ptr error) {
                          record.resumed_at = clock_type::now();
                          try {
                            if (error)
                              std::rethrow_exception(error);
                            record.outcome = "finished (not cancelled?)";
                          } catch (const std::system_error& e) {
                            record.outcome = e.code() == asio::error::operation_aborted ? "cancelled" : e.what();
                          } catch (const std::exception& e) {
                            record.outcome = e.what();
                          }
                          completed.set_value();
                        })));
      });
      asio::steady_timer timeout(io, std::chrono::milliseconds(timeout_ms));
      timeout.async_wait([&](asio::error_code ec) {
        if (ec)
          return;
        record.stopped_at = clock_type::now(); // the timeout fires
        record.stopped.store(true, std::memory_order_release);
        cancel.emit(asio::cancellation_type::terminal);
      });

      // 2. The watcher: the query is running...
      const auto finished = [&] { return done.wait_for(std::chrono::seconds(0)) == std::future_status::ready; };
      while (record.pid.load(std::memory_order_acquire) == 0 && !finished())
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      const int pid = record.pid.load();
      std::string before;
      while (pid != 0 && (before = activity(watcher, pid)).empty() && !record.stopped.load(std::memory_order_acquire))
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      if (before.empty()) {
        // Stopped before the server listed the query (a timeout shorter than the way there):
        // nothing to measure.
        done.get();
        ++early;
        continue;
      }
      // ... until the timeout stops it, then until the server no longer runs it.
      while (!record.stopped.load(std::memory_order_acquire) && !finished())
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      const auto watch_until = clock_type::now() + std::chrono::seconds(10);
      while (!activity(watcher, pid).empty() && clock_type::now() < watch_until) {
      }
      const auto gone_at = clock_type::now();
      const bool gone = activity(watcher, pid).empty();
      done.get();

      const std::chrono::duration<double, std::milli> gone_after = gone_at - record.stopped_at;
      const std::chrono::duration<double, std::milli> resumed_after = record.resumed_at - record.stopped_at;
      if (!gone || record.outcome != "cancelled" || !record.stopped.load()) {
        ++failures;
        fmt::print(stderr,
                   "run {}: seen running: '{}', outcome: {}, call threw: '{}', stopped: {}, gone from "
                   "pg_stat_activity: {}\n",
                   i + 1, before, record.outcome, record.call_error, record.stopped.load(), gone);
        continue;
      }
      gone_ms.push_back(gone_after.count());
      resumed_ms.push_back(resumed_after.count());
      if (runs <= 5)
        fmt::print("backend {}: pg_stat_activity says '{}'\n"
                   "  timeout after {} ms -> PQcancel -> the query is gone from pg_stat_activity {:.2f} ms later, "
                   "the caller's handler ran ({}) {:.2f} ms later\n",
                   pid, before, timeout_ms, gone_after.count(), record.outcome, resumed_after.count());
    }
    work.reset();
    loop.join();

    if (!gone_ms.empty())
      fmt::print("{} cancelled queries: stop -> gone from pg_stat_activity p50 {:.2f} ms, p99 {:.2f} ms, max {:.2f} ms; "
                 "stop -> caller resumed p50 {:.2f} ms, p99 {:.2f} ms, max {:.2f} ms\n",
                 gone_ms.size(), percentile(gone_ms, 0.5), percentile(gone_ms, 0.99),
                 *std::max_element(gone_ms.begin(), gone_ms.end()), percentile(resumed_ms, 0.5),
                 percentile(resumed_ms, 0.99), *std::max_element(resumed_ms.begin(), resumed_ms.end()));
    if (early)
      fmt::print("{} runs were stopped before the query showed in pg_stat_activity (not measured)\n", early);
    if (failures) {
      fmt::print(stderr, "pg_cancel_bench: {} of {} runs did not end with the query gone\n", failures, runs);
      return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
  } catch (const std::exception& e) {
    fmt::print(stderr, "pg_cancel_bench: {}\n", e.what());
    return EXIT_FAILURE;
  }
}
