// programs.test.cpp - the example's programs as a user runs them: command lines, signals, limits.
#include "child_process.hpp"
#include "http_client.hpp"

#include "catalog/catalog_db.hpp"
#include "catalog/generator.hpp"
#include "temp_dir.hpp"

#include <catch2/catch.hpp>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <chrono>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using sqlite_search::testing::run;

namespace {

std::filesystem::path small_catalogue(const catalog::testing::temp_dir& dir) {
  auto file = dir / "catalog.db";
  catalog::catalog_db db(file, catalog::open_mode::read_write);
  auto sync = db.begin_sync();
  sync.add(catalog::generate_catalog(200));
  sync.commit();
  return file;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

} // namespace

TEST_CASE("every program has a real --help (exit 0)", "[programs][cli]") {
  catalog::testing::temp_dir dir;
  for (const std::string exe : {SQLITE_SEARCH_SERVER_EXE, SQLITE_SEARCH_CLI_EXE, SQLITE_SEARCH_BENCH_EXE}) {
    INFO(exe);
    const auto r = run({exe, "--help"}, dir / "out.txt");
    CHECK(r.status == 0);
    CHECK(contains(r.output, "--db"));
  }
}

TEST_CASE("the server refuses out-of-range options with exit 2 and says which", "[programs][cli]") {
  catalog::testing::temp_dir dir;
  const auto db = small_catalogue(dir).string();
  const std::string exe = SQLITE_SEARCH_SERVER_EXE;
  using args = std::vector<std::string>;
  for (const auto& [bad, option] : std::vector<std::pair<args, std::string>>{
           {{"--port", "70000"}, "--port"},  // used to wrap around to 4464
           {{"--port", "-1"}, "--port"},     // used to wrap around to 65535
           {{"--port", "http"}, "--port"},
           {{"--threads", "100000"}, "--threads"}, // used to grow to 275 MB, then fail
           {{"--threads", "0"}, "--threads"},
           {{"--threads", "-3"}, "--threads"},
           {{"--address", "localhost:80"}, "--address"},
           {{"--frobnicate"}, "frobnicate"},
       }) {
    args argv{exe, "--db", db};
    argv.insert(argv.end(), bad.begin(), bad.end());
    INFO(argv[3] << " " << (bad.size() > 1 ? bad[1] : ""));
    const auto r = run(argv, dir / "out.txt");
    CHECK(r.status == 2);
    CHECK(contains(r.output, option));
  }
  const auto missing = run({exe, "--db", (dir / "nosuch.db").string()}, dir / "out.txt");
  CHECK(missing.status == 2);
  CHECK(contains(missing.output, "nosuch.db"));
}

TEST_CASE("the CLI and the benchmark validate their options too", "[programs][cli]") {
  catalog::testing::temp_dir dir;
  const auto db = small_catalogue(dir).string();
  const std::string cli = SQLITE_SEARCH_CLI_EXE;
  CHECK(run({cli, "--db", db, "--limit", "0", "x"}, dir / "out.txt").status == 2);
  CHECK(run({cli, "--db", db, "--limit", "abc", "x"}, dir / "out.txt").status == 2);
  CHECK(run({cli, "--db", db, "--limit", "1001", "x"}, dir / "out.txt").status == 2);
  CHECK(run({cli, "--db", db}, dir / "out.txt").status == 2); // no query
  const auto ok = run({cli, "--db", db, "--limit", "2", "--", "a*"}, dir / "out.txt");
  CHECK(ok.status == 0);
  CHECK(contains(ok.output, "2 results"));

  const std::string bench = SQLITE_SEARCH_BENCH_EXE;
  CHECK(run({bench, "--clients", "-1"}, dir / "out.txt").status == 2);
  CHECK(run({bench, "--threads", "0"}, dir / "out.txt").status == 2);
  CHECK(run({bench, "--seconds", "0"}, dir / "out.txt").status == 2);
}

TEST_CASE("SIGTERM stops the server with status 0 and a count of what it did", "[programs][shutdown]") {
  catalog::testing::temp_dir dir;
  const auto db = small_catalogue(dir).string();
  sqlite_search::testing::child_process server({SQLITE_SEARCH_SERVER_EXE, "--db", db, "--port", "0", "--threads", "1"},
                                               dir / "server.log");
  REQUIRE(server.wait_for_output("listening on"));
  server.signal(SIGTERM);
  CHECK(server.wait() == 0);
  const auto log = server.output();
  INFO(log);
  CHECK(contains(log, "shutting down"));
  // The same line as every backend's server: requests, how many of them timed out, then the
  // searches in flight.
  CHECK(contains(log, "sqlite_search_server: stopped after 0 requests (0 timed out); searches in flight"));
  CHECK(contains(log, "0 answered, 0 cancelled"));
}

// Sanitizer runtimes need descriptors of their own: with none left, UBSan's vptr check cannot
// read /proc/self/maps and reports a valid std::error_category as invalid (seen under the asan
// preset), so the descriptor-exhaustion test runs only in plain builds.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SQLITE_SEARCH_TESTS_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SQLITE_SEARCH_TESTS_SANITIZED 1
#endif
#endif

namespace {

// CPU time (user + system) the process has used, in clock ticks.
long cpu_ticks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream fields(text.substr(text.rfind(')') + 2)); // after "pid (comm) "
  std::string field;
  long utime = 0, stime = 0;
  for (int i = 3; fields >> field; ++i) { // field 3 is the state
    if (i == 14)
      utime = std::stol(field);
    if (i == 15) {
      stime = std::stol(field);
      break;
    }
  }
  return utime + stime;
}

} // namespace

TEST_CASE("out of descriptors, the server backs off instead of spinning on accept()", "[programs][limits]") {
#ifdef SQLITE_SEARCH_TESTS_SANITIZED
  WARN("skipped under a sanitizer: its runtime fails without free descriptors");
  return;
#endif
  catalog::testing::temp_dir dir;
  const auto db = small_catalogue(dir).string();
  // 48 descriptors: a few for the process, SQLite and Asio, the rest for connections.
  sqlite_search::testing::child_process server({SQLITE_SEARCH_SERVER_EXE, "--db", db, "--port", "0", "--threads", "1"},
                                               dir / "server.log", 48);
  REQUIRE(server.wait_for_output("listening on"));
  const auto log = server.output();
  const auto at = log.find("http://127.0.0.1:") + 17;
  const auto port = static_cast<std::uint16_t>(std::stoi(log.substr(at)));

  // More connections than descriptors: the kernel completes them, the server cannot accept them.
  asio::io_context io;
  std::vector<asio::ip::tcp::socket> clients;
  for (int i = 0; i < 80; ++i) {
    clients.emplace_back(io);
    clients.back().connect({asio::ip::make_address("127.0.0.1"), port});
  }
  REQUIRE(server.wait_for_output("out of file descriptors"));

  const auto t0 = std::chrono::steady_clock::now();
  const long ticks0 = cpu_ticks(server.pid());
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const long ticks = cpu_ticks(server.pid()) - ticks0;
  clients.clear(); // frees the server's descriptors as it sees each close
  REQUIRE(server.wait_for_output("accepting again after "));
  const double elapsed_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();

  const auto text = server.output();
  const auto n = std::stoull(text.substr(text.find("accepting again after ") + 22));
  INFO(text << "\nCPU ticks in 1 s: " << ticks << ", failed accepts " << n << " in " << elapsed_ms << " ms");
  // One failed accept() per 100 ms back-off, at most; it used to be tens of thousands a second.
  CHECK(n >= 1);
  CHECK(static_cast<double>(n) <= elapsed_ms / 100.0 + 5);
  CHECK(ticks < static_cast<long>(::sysconf(_SC_CLK_TCK)) / 4); // a spinning loop burns most of a core

  // And it serves again.
  sqlite_search::testing::http_client client(port);
  CHECK(client.get("/health").status == 200);
  server.signal(SIGTERM);
  CHECK(server.wait() == 0);
}
