// test_cluster.hpp - a throwaway PostgreSQL cluster for one test process, through pg_cluster.sh
// (the script run_demo.sh uses): created on first use, removed at exit.
#ifndef PG_SEARCH_TESTS_TEST_CLUSTER_HPP
#define PG_SEARCH_TESTS_TEST_CLUSTER_HPP

#include "pg_catalog.hpp"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>

namespace pg_search::testing {

class test_cluster {
public:
  /// The process's cluster; the first call creates it (initdb and start: a few seconds).
  static test_cluster& get() {
    static test_cluster cluster;
    return cluster;
  }

  const std::string& conninfo() const noexcept { return conninfo_; }
  connection_options options(std::string application = "pg_search_tests") const {
    return {.conninfo = conninfo_, .connect_timeout = std::chrono::seconds(5), .application_name = std::move(application)};
  }

  /// Stops the server (fast shutdown: running queries are terminated), and starts it again.
  void stop() { run("stop"); }
  void start() { run("start"); }

  /// Asks the server for a smart shutdown (what `pg_ctl stop -m smart` sends) and returns: it
  /// waits for the open sessions to end, and meanwhile refuses every new connection with
  /// "the database system is shutting down" (57P03). wait_stopped() then waits for the end.
  void begin_smart_shutdown() {
    std::ifstream pid_file(dir_ / "data" / "postmaster.pid");
    pid_t pid = 0;
    if (!(pid_file >> pid) || pid <= 0 || ::kill(pid, SIGTERM) != 0)
      throw std::runtime_error("no running server to shut down in " + dir_.string());
  }
  /// Waits (at most 30 s) until the server has exited.
  bool wait_stopped() const {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::filesystem::exists(dir_ / "data" / "postmaster.pid")) {
      if (std::chrono::steady_clock::now() > give_up)
        return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
  }

  ~test_cluster() {
    const std::string command = "'" + std::string(PG_CLUSTER_SCRIPT) + "' destroy '" + dir_.string() + "' >/dev/null 2>&1";
    (void)std::system(command.c_str());
  }

private:
  test_cluster() {
    char pattern[] = "/tmp/pg_search_tests.XXXXXX";
    if (!::mkdtemp(pattern))
      throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    run("create");
    std::ifstream in(dir_ / "conninfo");
    std::getline(in, conninfo_);
    if (conninfo_.empty())
      throw std::runtime_error("pg_cluster.sh create wrote no connection string");
  }

  void run(const std::string& action) {
    const auto log = std::filesystem::temp_directory_path() / ("pg_cluster_" + std::to_string(::getpid()) + ".log");
    const std::string command = "'" + std::string(PG_CLUSTER_SCRIPT) + "' " + action + " '" + dir_.string() + "' >'" +
                                log.string() + "' 2>&1";
    if (std::system(command.c_str()) != 0) {
      std::ifstream in(log);
      const std::string output((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      throw std::runtime_error("pg_cluster.sh " + action + " failed: " + output);
    }
    std::filesystem::remove(log);
  }

  std::filesystem::path dir_;
  std::string conninfo_;
};

/// A loopback port nothing listens on (bound, then released).
inline int closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

/// Rows of pg_stat_activity running `pattern` (SQL LIKE) for `application`, seen from a fresh
/// connection (a connection of its own survives nothing the tests do to the server).
inline int active_queries(const std::string& conninfo, const std::string& application, const std::string& pattern) {
  connection watcher({.conninfo = conninfo, .application_name = "pg_search_tests watcher"});
  const std::string params[] = {application, pattern};
  const auto r = watcher.exec("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state = 'active' "
                              "AND query LIKE $2",
                              params);
  return static_cast<int>(r.number(0, 0));
}

/// Waits until `predicate()` holds (true) or 20 s pass (false): a hang fails, never stalls.
template <typename Predicate>
bool eventually(Predicate predicate) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < give_up) {
    if (predicate())
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return predicate();
}

} // namespace pg_search::testing

#endif // PG_SEARCH_TESTS_TEST_CLUSTER_HPP
