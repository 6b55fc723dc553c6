// programs.test.cpp - the example's programs as a user runs them: command lines, signals, limits.
#include "child_process.hpp"

#include "catalog/catalog_db.hpp"
#include "catalog/generator.hpp"
#include "temp_dir.hpp"

#include <catch2/catch.hpp>

#include <string>
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
  CHECK(contains(log, "0 answered, 0 cancelled"));
}
