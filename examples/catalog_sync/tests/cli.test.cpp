// Tests of the command lines of the catalog_sync and catalog programs: validated ranges (exit
// 2 with a message naming the option), a real --help (exit 0), and the exit status of a sync
// the deletion guard refuses (3), run as a user would, as child processes.
#include "paginated_server.hpp"

#include "slow_commit.hpp"
#include "temp_dir.hpp"

#include <catch2/catch.hpp>

#include <catalog/catalog_db.hpp>
#include <catalog/generator.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>
#include <cstdio>
#include <string>

namespace {

struct outcome {
  int status = -1;
  std::string output; // stdout and stderr
};

// Runs `command` through the shell; arguments here are fixed strings and temporary paths.
outcome run(const std::string& command) {
  outcome out;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::array<char, 4096> buffer{};
  while (std::size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe))
    out.output.append(buffer.data(), n);
  const int raw = ::pclose(pipe);
  REQUIRE(WIFEXITED(raw));
  out.status = WEXITSTATUS(raw);
  return out;
}

const std::string sync_exe = CATALOG_SYNC_EXE;
const std::string server_exe = CATALOG_SERVER_EXE;
const std::string import_exe = CATALOG_IMPORT_EXE;
const std::string bench_exe = CATALOG_SYNC_BENCH_EXE;

} // namespace

TEST_CASE("out-of-range numbers are refused with exit status 2, naming the option", "[cli]") {
  struct bad {
    std::string command;
    std::string option;
  };
  const auto c = GENERATE_REF(values<bad>({
      {sync_exe + " --url http://127.0.0.1:1/x --concurrency -1", "--concurrency"},
      {sync_exe + " --url http://127.0.0.1:1/x --concurrency 0", "--concurrency"},
      {sync_exe + " --url http://127.0.0.1:1/x --page-size -5", "--page-size"},
      {sync_exe + " --url http://127.0.0.1:1/x --page-size 18446744073709551611", "--page-size"},
      {sync_exe + " --url http://127.0.0.1:1/x --retries 0", "--retries"},
      {sync_exe + " --url http://127.0.0.1:1/x --max-delete-share 1.5", "--max-delete-share"},
      {sync_exe + " --url http://127.0.0.1:1/x --style pages", "--style"},
      {sync_exe + " --concurrency 4", "--url"},
      {server_exe + " --port 70000", "--port"},
      {server_exe + " --port -1", "--port"},
      {server_exe + " --threads 100000", "--threads"},
      {server_exe + " --fault-429 2", "--fault-429"},
      {server_exe + " --fault-page 3:sometimes", "--fault-page"},
      {import_exe + " --generate -3", "--generate"},
      {import_exe + " --db x.db", "--generate"},
      {bench_exe + " --runs 0", "--runs"},
  }));
  INFO(c.command);
  const outcome o = run(c.command);
  INFO(o.output);
  CHECK(o.status == 2);
  CHECK_THAT(o.output, Catch::Contains(c.option));
  CHECK_THAT(o.output, !Catch::Contains("vector::reserve") && !Catch::Contains("terminate"));
}

TEST_CASE("--help describes the options and exits 0", "[cli]") {
  const auto exe = GENERATE_REF(values({sync_exe, server_exe, import_exe, bench_exe}));
  INFO(exe);
  const outcome o = run(exe + " --help");
  CHECK(o.status == 0);
  CHECK_THAT(o.output, Catch::Contains("Usage:") && Catch::Contains("--help"));
  if (exe == sync_exe)
    CHECK_THAT(o.output, Catch::Contains("--allow-mass-delete") && Catch::Contains("--max-delete-share") &&
                             Catch::Contains("[1 - 256]"));
}

TEST_CASE("a sync refused by the deletion guard exits 3 and says how to proceed", "[cli]") {
  const auto records = catalog::generate_catalog(120, 31);
  catalog_sync::paginated_server server(records, {});
  catalog::testing::temp_dir dir;
  const std::string db = (dir / "c.db").string();
  const std::string url = server.url(catalog_sync::pagination_style::offset);
  REQUIRE(run(sync_exe + " --progress quiet --db " + db + " --url " + url).status == 0);

  const outcome refused = run(sync_exe + " --progress quiet --db " + db + " --url '" + url + "?section=nosuch'");
  INFO(refused.output);
  CHECK(refused.status == 3);
  CHECK_THAT(refused.output, Catch::Contains("refusing to delete 120 of the catalogue's 120 records") &&
                                 Catch::Contains("--allow-mass-delete"));
  CHECK(catalog::catalog_db(dir / "c.db").size() == 120);

  const outcome allowed =
      run(sync_exe + " --progress quiet --allow-mass-delete --db " + db + " --url '" + url + "?section=nosuch'");
  CHECK(allowed.status == 0);
  CHECK_THAT(allowed.output, Catch::Contains("120 deleted"));
  CHECK(catalog::catalog_db(dir / "c.db").size() == 0);
}

TEST_CASE("SIGTERM during a long commit: catalog_sync exits 130 within its grace, the old catalogue intact",
          "[cli][shutdown]") {
  const auto before = catalog::generate_catalog(100, 33);
  catalog_sync::paginated_server server(before, {});
  catalog::testing::temp_dir dir;
  const std::string db = (dir / "c.db").string();
  const std::string url = server.url(catalog_sync::pagination_style::offset);
  REQUIRE(run(sync_exe + " --progress quiet --db " + db + " --url " + url).status == 0);
  auto after = before;
  for (auto& r : catalog_sync::testing::heavy_records(12)) // seconds of full-text indexing
    after.push_back(std::move(r));
  server.set_catalogue(after);

  // The program as a child of its own, output to a file, so that the test can signal it.
  const std::string out = (dir / "out.txt").string();
  std::vector<std::string> args{sync_exe, "--progress", "quiet", "--db", db, "--url", url,
                                "--page-size", "4", "--concurrency", "2"};
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t files;
  posix_spawn_file_actions_init(&files);
  posix_spawn_file_actions_addopen(&files, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&files, 1, 2);
  pid_t pid = -1;
  REQUIRE(posix_spawn(&pid, sync_exe.c_str(), &files, nullptr, argv.data(), environ) == 0);
  posix_spawn_file_actions_destroy(&files);

  const bool committing = catalog_sync::testing::wait_for_commit(dir / "c.db");
  ::kill(pid, SIGTERM);
  // 30 s: an orchestrator's usual grace, here only a hang detector (it exits in well under one).
  int raw = 0;
  bool exited = false;
  for (auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
       !exited && std::chrono::steady_clock::now() < give_up;) {
    exited = ::waitpid(pid, &raw, WNOHANG) == pid;
    if (!exited)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!exited) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &raw, 0);
  }
  std::stringstream output;
  output << std::ifstream(out).rdbuf();
  INFO(output.str());
  REQUIRE(committing);
  REQUIRE(exited);
  REQUIRE(WIFEXITED(raw));
  CHECK(WEXITSTATUS(raw) == 130);
  CHECK_THAT(output.str(), Catch::Contains("interrupted") && Catch::Contains("nothing was committed"));
  const catalog::catalog_db reader(dir / "c.db");
  CHECK(reader.size() == before.size());
  CHECK_FALSE(reader.find("heavy-0").has_value());
}
