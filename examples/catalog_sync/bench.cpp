// catalog_sync_bench - how close a paginated sync gets to the ideal, and what it costs.
//
// The program demonstrates that bounded fan-out over a blocking client pays off as predicted:
// against the local server with a fixed latency per page it syncs the catalogue with K = 1, 4,
// 16 and 64 requests in flight and prints the wall time beside the ideal
// (first page + ceil(remaining pages / K) x latency). Then the same with injected 429s
// (throughput, retries), and the peak RSS of the catalog_sync CLI (a child process, wait4)
// for a catalogue ten times larger.
//
// Each sync is repeated --runs times and the medians are printed (the machine is shared).
// A last row syncs the same catalogue from offset pages without a total (a bare JSON array):
// K pages stay in flight past the unknown end until an empty page proves it.
//
//   catalog_sync_bench [--quick] [--runs N]
//
// Distributed under the Boost Software License, Version 1.0.
#include "catalog_fetch.hpp"
#include "paginated_server.hpp"

#include <catalog/generator.hpp>
#include <smartasync/block_on.hpp>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <csignal>
#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

extern char** environ;

namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

struct run_result {
  double seconds = 0;
  /// Until the last page was staged: the part the ideal describes (the commit comes after).
  double fetch_seconds = 0;
  /// CPU time of this process (client and in-process server) during the run.
  double cpu_seconds = 0;
  std::size_t retries = 0;
  std::size_t items = 0;
  catalog::sync_counts counts;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

run_result sync_once(const catalog_sync::paginated_server& server, std::size_t k, const fs::path& db) {
  catalog_sync::sync_options o;
  o.url = server.url(catalog_sync::pagination_style::offset);
  o.style = catalog_sync::pagination_style::offset;
  o.concurrency = k;
  o.page_size = 100;
  o.retry_base_delay = 50ms;
  o.max_attempts = 8;
  o.seed = 1;
  o.compression = false; // loopback: gzip would only burn CPU on both ends of the same 2 cores
  catalog_sync::catalog_syncer syncer(o);
  run_result r;
  const auto start = std::chrono::steady_clock::now();
  auto sink = [&r, start](const catalog_sync::sync_event& e) {
    if (std::holds_alternative<catalog_sync::page_done>(e))
      r.fetch_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (const auto* c = std::get_if<catalog_sync::sync_completed>(&e)) {
      r.retries = c->retries;
      r.items = c->items;
    }
  };
  auto cpu = [] {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
  };
  const double cpu_before = cpu();
  r.counts = smartasync::block_on(syncer.run(db, sink));
  r.cpu_seconds = cpu() - cpu_before;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

/// Runs the catalog_sync CLI as a child and returns its peak RSS in KiB (wait4's rusage).
long child_peak_rss_kib(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0)
    throw std::runtime_error("cannot start " + args[0]);
  int status = 0;
  rusage usage{};
  if (wait4(pid, &status, 0, &usage) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error(args[0] + " failed");
  return usage.ru_maxrss;
}

/// Starts catalog_server as a child process; returns its pid and port.
std::pair<pid_t, std::string> start_server_process(const fs::path& exe, std::size_t records, int latency_ms) {
  int out[2];
  if (pipe(out) != 0)
    throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  const std::string count = std::to_string(records), latency = std::to_string(latency_ms);
  std::vector<std::string> args = {exe.string(), "--port", "0", "--source", "generate", count, "--latency-ms", latency};
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  if (rc != 0)
    throw std::runtime_error("cannot start " + exe.string());
  std::string text;
  char buffer[256];
  while (text.find("port ") == std::string::npos || text.find('\n', text.find("port ")) == std::string::npos) {
    const ssize_t n = read(out[0], buffer, sizeof buffer);
    if (n <= 0)
      throw std::runtime_error("catalog_server did not start");
    text.append(buffer, static_cast<std::size_t>(n));
  }
  close(out[0]);
  const auto at = text.find("port ") + 5;
  return {pid, text.substr(at, text.find('\n', at) - at)};
}

} // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::size_t runs = 3;
  CLI::App app{"How close a paginated sync gets to the ideal (first page + ceil(rest / K) x latency), with 429s, "
               "and the CLI's peak RSS. Use a Release build.",
               "catalog_sync_bench"};
  app.add_flag("--quick", quick, "20 ms pages, 101 pages, RSS at 1x and 3x (a smoke run)");
  app.add_option("--runs", runs, "repetitions of each sync; medians are printed")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{50}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? EXIT_SUCCESS : 2; // --help is a success; anything else is usage
  }
  const auto latency = quick ? 20ms : 50ms;
  const std::size_t pages = quick ? 101 : 120;
  const std::size_t records = pages * 100;
  const fs::path dir = fs::temp_directory_path() / fmt::format("catalog-sync-bench-{}", ::getpid());
  fs::create_directories(dir);

  try {
    // 0. Peak RSS of the catalog_sync CLI for the catalogue and one ten times larger (three with
    //    --quick). Measured first, with the server in its own process: a child's ru_maxrss
    //    includes the peak RSS of the process that spawned it (Linux carries the old address
    //    space's high-water mark across exec), so the parent must still be small here.
    std::vector<std::string> rss_lines;
    {
      const fs::path here = fs::read_symlink("/proc/self/exe").parent_path();
      for (std::size_t factor : {std::size_t{1}, quick ? std::size_t{3} : std::size_t{10}}) {
        auto [server_pid, port] = start_server_process(here / "catalog_server", records * factor, quick ? 2 : 5);
        const fs::path db = dir / fmt::format("rss-{}.db", factor);
        const auto start = std::chrono::steady_clock::now();
        long kib = 0;
        try {
          kib = child_peak_rss_kib({(here / "catalog_sync").string(), "--url",
                                    fmt::format("http://127.0.0.1:{}/offset/packages", port), "--db", db.string(),
                                    "--concurrency", "16", "--progress", "quiet", "--no-compression"});
        } catch (...) {
          kill(server_pid, SIGTERM);
          waitpid(server_pid, nullptr, 0);
          throw;
        }
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        kill(server_pid, SIGTERM);
        waitpid(server_pid, nullptr, 0);
        rss_lines.push_back(fmt::format("  {:>7} records ({:>5} pages): peak RSS {:>6.1f} MiB, {:.1f} s\n",
                                        records * factor, pages * factor, static_cast<double>(kib) / 1024.0, s));
      }
    }
    fmt::print("catalog_sync_bench{}: {} records, {} pages of 100, {} ms per page, offset pagination, "
               "medians of {} run{}\n",
               quick ? " --quick" : "", records, pages, latency.count(), runs, runs == 1 ? "" : "s");

    // 1. Wall time against the ideal, for each K. Each run syncs twice into a fresh database: a
    //    first sync (every record added) and a re-sync (every record unchanged). The last row is
    //    the same at K = 16 from bare-array offset pages, without a total.
    {
      catalog_sync::server_options so;
      so.latency = latency;
      so.threads = 96; // > 64 keep-alive connections
      catalog_sync::paginated_server server(catalog::generate_catalog(records, 1), so);
      so.bare_offset_pages = true;
      catalog_sync::paginated_server bare(catalog::generate_catalog(records, 1), so);
      fmt::print("\n{:>12} {:>9} | {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9} | {:>9} {:>7}\n", "K", "ideal ms", "fetch ms",
                 "vs ideal", "total ms", "fetch ms", "vs ideal", "total ms", "in flight", "CPU ms");
      fmt::print("{:>12} {:>9} | {:^29} | {:^29} |\n", "", "", "first sync (all added)", "re-sync (all unchanged)");
      struct row {
        std::size_t k;
        catalog_sync::paginated_server* server;
        const char* label;
      };
      for (const row& r : {row{1, &server, "1"}, row{4, &server, "4"}, row{16, &server, "16"},
                           row{64, &server, "64"}, row{16, &bare, "16, no total"}}) {
        const double ideal = static_cast<double>(latency.count()) *
                             (1.0 + std::ceil(static_cast<double>(pages - 1) / static_cast<double>(r.k))) / 1000.0;
        std::vector<double> first_fetch, first_total, again_fetch, again_total, cpu;
        std::size_t in_flight = 0;
        for (std::size_t i = 0; i < runs; ++i) {
          const fs::path db = dir / fmt::format("k{}-{}.db", r.k, i);
          r.server->reset_stats();
          const run_result first = sync_once(*r.server, r.k, db);
          const run_result again = sync_once(*r.server, r.k, db);
          if (first.counts.added != records || again.counts.unchanged != records)
            throw std::runtime_error(fmt::format("K={}: the sync did not yield every record", r.label));
          first_fetch.push_back(first.fetch_seconds);
          first_total.push_back(first.seconds);
          again_fetch.push_back(again.fetch_seconds);
          again_total.push_back(again.seconds);
          cpu.push_back(again.cpu_seconds);
          in_flight = std::max(in_flight, r.server->stats().max_in_flight);
          fs::remove(db);
        }
        const double ff = median(first_fetch), af = median(again_fetch);
        fmt::print("{:>12} {:>9.0f} | {:>9.0f} {:>+8.1f}% {:>9.0f} | {:>9.0f} {:>+8.1f}% {:>9.0f} | {:>9} {:>7.0f}\n",
                   r.label, ideal * 1000, ff * 1000, 100 * (ff / ideal - 1), median(first_total) * 1000, af * 1000,
                   100 * (af / ideal - 1), median(again_total) * 1000, in_flight, median(cpu) * 1000);
      }
    }

    // 2. The same catalogue with 10% of requests answered 429 + Retry-After: 1.
    {
      catalog_sync::server_options so;
      so.latency = latency;
      so.rate_429 = 0.10;
      so.retry_after_seconds = 1;
      so.seed = 3;
      catalog_sync::paginated_server server(catalog::generate_catalog(records, 1), so);
      const run_result r = sync_once(server, 16, dir / "rate-limited.db");
      fmt::print("\nwith 10% 429 (Retry-After: 1), K=16: {:.0f} ms, {:.0f} items/s, {} retries "
                 "(server: {} answered 429), {} records added\n",
                 r.seconds * 1000, static_cast<double>(r.items) / r.seconds, r.retries,
                 server.stats().rate_limited, r.counts.added);
    }

    fmt::print("\npeak RSS of the catalog_sync CLI (K=16, page size 100, fresh database; server in its own process):\n");
    for (const auto& line : rss_lines)
      fmt::print("{}", line);
  } catch (const std::exception& e) {
    fmt::print(stderr, "catalog_sync_bench: {}\n", e.what());
    fs::remove_all(dir);
    return EXIT_FAILURE;
  }
  fs::remove_all(dir);
  return EXIT_SUCCESS;
}
