// load_bench.hpp - the load driver of the search benchmarks: the server in-process, many
// keep-alive search clients and a /health prober, for any backend (SQLite, PostgreSQL).
// Distributed under the Boost Software License, Version 1.0.
#ifndef SQLITE_SEARCH_LOAD_BENCH_HPP
#define SQLITE_SEARCH_LOAD_BENCH_HPP

#include "http.hpp"
#include "http_client.hpp"
#include "search_server.hpp"

#include <smartasync/diagnostics.hpp>

#include <asio/io_context.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sqlite_search::bench {

using clock_type = std::chrono::steady_clock;
using ms = std::chrono::duration<double, std::milli>;

struct mode_result {
  std::string mode;
  std::size_t searches = 0;
  std::size_t errors = 0;
  double seconds = 0;
  std::vector<double> search_ms;
  std::vector<double> health_ms;
  std::size_t reports = 0;
};

inline double percentile(std::vector<double> v, double p) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  const auto index = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(index, v.size() - 1)];
}

/// Starts search_server in-process with `backend` (its sync form on the loop when
/// `inline_search`), and for `seconds` drives it with `client_count` keep-alive clients cycling
/// through `queries` (limit 10) while a prober sends GET /health every 10 ms.
inline mode_result run_load(const search_backend& backend, bool inline_search, const std::vector<std::string>& queries,
                            int client_count, double seconds) {
  mode_result result;
  result.mode = inline_search ? "inline (search(q, n) on the loop)" : "offloaded (co_await search.async_call(q, n))";

  std::atomic<std::size_t> reports{0};
  auto previous = smartasync::set_diagnostics_handler([&](const smartasync::diagnostic& d) {
    if (d.kind == smartasync::diagnostic_kind::blocking_call_on_loop)
      ++reports;
  });

  asio::io_context io{1};
  search_server server(io, backend, server_options{.inline_search = inline_search});
  server.start();
  std::thread loop([&] { io.run(); });

  std::mutex mutex;
  std::atomic<std::size_t> errors{0};
  const auto start = clock_type::now();
  const auto deadline = start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(seconds));

  std::vector<std::thread> clients;
  for (int c = 0; c < client_count; ++c)
    clients.emplace_back([&, c] {
      std::vector<double> mine;
      try {
        testing::http_client client(server.port(), 60);
        for (std::size_t i = static_cast<std::size_t>(c); clock_type::now() < deadline; ++i) {
          const auto t0 = clock_type::now();
          auto r = client.get("/search?q=" + http::percent_encode(queries[i % queries.size()]) +
                              "&limit=10");
          if (r.status != 200)
            ++errors;
          else
            mine.push_back(ms(clock_type::now() - t0).count());
        }
      } catch (const std::exception&) {
        ++errors;
      }
      std::lock_guard lock(mutex);
      result.search_ms.insert(result.search_ms.end(), mine.begin(), mine.end());
    });

  // The prober: one /health every 10 ms on its own connection, as a load balancer would.
  std::thread prober([&] {
    try {
      testing::http_client client(server.port(), 60);
      while (clock_type::now() < deadline) {
        const auto t0 = clock_type::now();
        if (client.get("/health").status != 200)
          ++errors;
        result.health_ms.push_back(ms(clock_type::now() - t0).count());
        std::this_thread::sleep_until(t0 + std::chrono::milliseconds(10));
      }
    } catch (const std::exception&) {
      ++errors;
    }
  });

  for (auto& t : clients)
    t.join();
  prober.join();
  result.seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  server.stop();
  loop.join();
  smartasync::set_diagnostics_handler(previous);

  result.searches = result.search_ms.size();
  result.errors = errors;
  result.reports = reports;
  return result;
}

/// The modes side by side, as a markdown table.
inline void print_load_table(const std::vector<mode_result>& results) {
  fmt::print("| mode | searches/s | search p50 | search p99 | /health probes | /health p50 | /health p99 | /health max "
             "| errors | reports |\n");
  fmt::print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const auto& r : results) {
    const auto max = r.health_ms.empty() ? 0.0 : *std::max_element(r.health_ms.begin(), r.health_ms.end());
    fmt::print("| {} | {:.1f} | {:.1f} ms | {:.1f} ms | {} | {:.2f} ms | {:.2f} ms | {:.1f} ms | {} | {} |\n", r.mode,
               static_cast<double>(r.searches) / r.seconds, percentile(r.search_ms, 0.50),
               percentile(r.search_ms, 0.99), r.health_ms.size(), percentile(r.health_ms, 0.50),
               percentile(r.health_ms, 0.99), max, r.errors, r.reports);
  }
}

} // namespace sqlite_search::bench

#endif // SQLITE_SEARCH_LOAD_BENCH_HPP
