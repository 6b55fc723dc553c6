// pg_search.test.cpp - the catalogue on a real PostgreSQL server (a throwaway cluster per test
// process): results and ranking, bad queries, a server down at start or restarted mid-run,
// cancellation that the server confirms, and the HTTP server's shutdown with queries in flight.
#include "pg_catalog_search.hpp"

#include "catalog/generator.hpp"
#include "child_process.hpp"
#include "http_client.hpp"
#include "search_server.hpp"
#include "test_cluster.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace pg_search;
using pg_search::testing::active_queries;
using pg_search::testing::eventually;
using pg_search::testing::test_cluster;
using json = nlohmann::json;

namespace {

// A few known records in a generated crowd (whose words are software words, no "zebra").
void import_catalogue(const test_cluster& cluster) {
  auto records = catalog::generate_catalog(300);
  records.push_back({"zebra-tools", "1.0", "utils", "Ada <a@example.org>", "Utilities for striped data"});
  records.push_back({"stripes", "2.0", "utils", "Ben <b@example.org>", "Draws a zebra, and another zebra"});
  records.push_back({"zebrafish-db", "0.3", "science", "Cy <c@example.org>", "Zebra fish genome database"});
  records.push_back({"alpha", "1", "misc", "Di <d@example.org>", "The first record, common words: alpha"});
  records.push_back({"brackets", "1", "misc", "Ed <e@example.org>", "Quagga reads [quux] and C:\\temp"});
  connection db(cluster.options());
  REQUIRE(import_records(db, records) == records.size());
}

// The server on its own io_context thread, stopped and joined on destruction.
struct running_server {
  asio::io_context io{1};
  sqlite_search::search_server server;
  std::thread thread;

  running_server(sqlite_search::search_backend backend, sqlite_search::server_options options = {})
      : server(io, std::move(backend), std::move(options)) {
    server.start();
    thread = std::thread([this] { io.run(); });
  }
  ~running_server() {
    server.stop();
    thread.join();
  }
  std::uint16_t port() const { return server.port(); }
};

// A slow call (SELECT pg_sleep) that a stop token cancels on the server, and its backend pid.
struct slow_query {
  connection_pool* connections;
  std::atomic<int>* pid;
  void operator()(std::stop_token stop, double seconds) const {
    auto db = connections->acquire();
    pid->store(db->backend_pid());
    const std::string param = std::to_string(seconds);
    db->exec("SELECT pg_sleep($1::float8)", std::span(&param, 1), std::move(stop));
  }
};

} // namespace

TEST_CASE("search ranks name matches above description matches, with highlighted snippets", "[pg][search]") {
  auto& cluster = test_cluster::get();
  import_catalogue(cluster);
  connection db(cluster.options());

  const auto hits = search(db, "zebra", 10);
  REQUIRE(hits.size() == 3);
  // The name weighs 10 descriptions: the record named zebra comes before the one whose
  // description says it twice; "zebrafish" is another word, matched by its description.
  CHECK(hits[0].name == "zebra-tools");
  CHECK(hits[0].score > hits[1].score);
  CHECK(hits[1].score >= hits[2].score);
  std::vector<std::string> rest{hits[1].name, hits[2].name};
  std::sort(rest.begin(), rest.end());
  CHECK(rest == std::vector<std::string>{"stripes", "zebrafish-db"});
  for (const auto& h : hits)
    if (h.name == "stripes")
      CHECK(h.snippet == "Draws a [zebra], and another [zebra]");

  // The text's own brackets are escaped, so that only the matches read as [match].
  const auto bracketed = search(db, "quagga | quux", 10);
  REQUIRE(bracketed.size() == 1);
  CHECK(bracketed[0].snippet == "[Quagga] reads \\[[quux]\\] and C:\\\\temp");

  CHECK(search(db, "zebra", 1).size() == 1);                    // the limit holds
  CHECK(search(db, "zebra & fish", 10).at(0).name == "zebrafish-db"); // AND
  CHECK(search(db, "zebr:*", 10).size() == 3);                   // prefix
  CHECK(search(db, "zebra & !fish", 10).size() == 2);            // NOT
  CHECK(search(db, "nosuchwordanywhere", 10).empty());
  CHECK(count_records(db) == 305);

  // Ties are broken by name: the order is the same on every run.
  const auto a = search(db, "network", 50), b = search(db, "network", 50);
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i)
    CHECK(a[i].name == b[i].name);
}

TEST_CASE("bad queries are clear errors, and the server answers them 400", "[pg][search][errors]") {
  auto& cluster = test_cluster::get();
  import_catalogue(cluster);
  connection db(cluster.options());

  CHECK_THROWS_MATCHES(search(db, "zebra fish", 10), catalog::invalid_query,
                       Catch::Matchers::Message("invalid search query: syntax error in tsquery: \"zebra fish\""));
  CHECK_THROWS_AS(search(db, "zebra &", 10), catalog::invalid_query);
  CHECK_THROWS_AS(search(db, "(zebra", 10), catalog::invalid_query);
  CHECK_THROWS_AS(search(db, "   ", 10), catalog::invalid_query);
  CHECK_THROWS_AS(search(db, std::string(2000, 'a'), 10), catalog::invalid_query);
  CHECK_THROWS_AS(search(db, std::string("a\0b", 3), 10), catalog::invalid_query);
  CHECK_THROWS_AS(search(db, "\xff\xfe", 10), catalog::invalid_query);
  // Not a syntax error but a value the server rejects (22023): the user's query all the same.
  CHECK_THROWS_MATCHES(search(db, "lib <99999> net", 10), catalog::invalid_query,
                       Catch::Matchers::Message("invalid search query: distance in phrase operator must be an "
                                                "integer value between zero and 16384 inclusive"));
  CHECK_THROWS_AS(search(db, "zebra", 0), catalog::invalid_limit);
  CHECK_THROWS_AS(search(db, "zebra", max_limit + 1), catalog::invalid_limit);
  CHECK(search(db, "zebra", 10).size() == 3); // the connection is fine after each error

  connection_pool connections(cluster.options(), 2);
  smartasync::blocking_pool pool{2, 16};
  auto wrapped = make_pg_search(pool, connections);
  running_server server(sqlite_search::make_backend(wrapped, make_pg_probe(pool, connections)));
  sqlite_search::testing::http_client client(server.port());
  auto r = client.get("/search?q=zebra+fish");
  CHECK(r.status == 400);
  CHECK(json::parse(r.body)["error"] == "invalid search query: syntax error in tsquery: \"zebra fish\"");
  r = client.get("/search?q=lib+%3C99999%3E+net");
  CHECK(r.status == 400);
  CHECK_THAT(json::parse(r.body)["error"].get<std::string>(),
             Catch::Matchers::StartsWith("invalid search query: distance in phrase operator"));
  r = client.get("/search?q=zebra+%26+fish&limit=5");
  REQUIRE(r.status == 200);
  CHECK(json::parse(r.body)["results"][0]["name"] == "zebrafish-db");
  CHECK(client.get("/ready").status == 200);
}

TEST_CASE("a server down at start is a clear error, retried only after a backoff", "[pg][connections]") {
  const std::string conninfo = "host=127.0.0.1 port=" + std::to_string(pg_search::testing::closed_port()) +
                               " dbname=postgres user=postgres";
  connection_pool connections({.conninfo = conninfo}, 1);
  const auto unavailable_message = [&] {
    try {
      (void)connections.acquire();
    } catch (const catalog::unavailable& e) {
      return std::string(e.what());
    }
    return std::string("(no catalog::unavailable thrown)");
  };
  const std::string first = unavailable_message();
  CHECK_THAT(first, Catch::Matchers::StartsWith("cannot connect to PostgreSQL") &&
                        Catch::Matchers::Contains("Connection refused"));
  // At once again: the last error and when the next attempt will be, without an attempt.
  const std::string second = unavailable_message();
  CHECK_THAT(second, Catch::Matchers::Contains("Connection refused") && Catch::Matchers::Contains("next attempt in"));
  CHECK(connections.connects() == 0);

  // The programs say so and exit 1 (no hang: connect_timeout bounds a silent server).
  namespace t = sqlite_search::testing;
  const auto out = std::filesystem::temp_directory_path() / ("pg_down_" + std::to_string(::getpid()) + ".txt");
  auto r = t::run({PG_SEARCH_SERVER_EXE, "--pg", conninfo, "--port", "0"}, out);
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Matchers::Contains("pg_search_server: cannot connect to PostgreSQL"));
  r = t::run({PG_SEARCH_CLI_EXE, "--pg", conninfo, "zebra"}, out);
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Matchers::Contains("pg_search: cannot connect to PostgreSQL"));
  std::filesystem::remove(out);
}

TEST_CASE("a server restarted mid-run fails the query in flight, and the next call reconnects", "[pg][connections]") {
  auto& cluster = test_cluster::get();
  connection_pool connections(cluster.options("pg_search_tests restart"), 1);
  (void)connections.acquire()->exec("SELECT 1");
  REQUIRE(connections.connects() == 1);

  // 1. Idle across a restart: the dead connection is noticed before use and replaced; the
  //    call succeeds.
  cluster.stop();
  cluster.start();
  CHECK(std::string(connections.acquire()->exec("SELECT 41 + 1").text(0, 0)) == "42");
  CHECK(connections.connects() == 2);

  // 2. A query running when the server stops fails with a clear error...
  std::promise<std::string> outcome;
  std::thread caller([&] {
    try {
      (void)connections.acquire()->exec("SELECT pg_sleep(30)");
      outcome.set_value("finished");
    } catch (const catalog::unavailable& e) {
      outcome.set_value(e.what());
    } catch (const std::exception& e) {
      outcome.set_value(std::string("unexpected: ") + e.what());
    }
  });
  REQUIRE(eventually([&] { return active_queries(cluster.conninfo(), "pg_search_tests restart", "%pg_sleep%") == 1; }));
  cluster.stop();
  const std::string message = outcome.get_future().get();
  caller.join();
  CHECK_THAT(message, Catch::Matchers::StartsWith("connection to PostgreSQL lost during the query"));

  // ... calls while it is down fail at once, without a hang ...
  CHECK_THROWS_AS(connections.acquire(), catalog::unavailable);

  // ... and once it is back, a call (after the backoff) reconnects.
  cluster.start();
  std::string answer;
  REQUIRE(eventually([&] {
    try {
      answer = std::string(connections.acquire()->exec("SELECT 'back'").text(0, 0));
      return true;
    } catch (const catalog::unavailable&) {
      return false;
    }
  }));
  CHECK(answer == "back");
  CHECK(connections.connects() == 3);
}

TEST_CASE("a cancelled call interrupts its query on the server, and the connection stays usable", "[pg][cancel]") {
  auto& cluster = test_cluster::get();
  const std::string app = "pg_search_tests cancel";
  connection_pool connections(cluster.options(app), 1);
  smartasync::blocking_pool pool{1, 16};
  std::atomic<int> pid{0};
  auto sleep = smartasync::smart_async(pool, slow_query{&connections, &pid}, {.name = "pg_sleep"});

  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::thread loop([&] { io.run(); });

  // Repeated, back to back: a cancel that lands as its query ends must not hit the next one.
  for (int round = 0; round < 10; ++round) {
    INFO("round " << round);
    pid = 0;
    asio::cancellation_signal cancel;
    std::promise<std::error_code> completed;
    asio::post(io, [&] {
      sleep.async_call(30.0, asio::bind_cancellation_slot(cancel.slot(), asio::bind_executor(io, [&](std::exception_ptr e) {
                                                        std::error_code code;
                                                        try {
                                                          if (e)
                                                            std::rethrow_exception(e);
                                                        } catch (const std::system_error& s) {
                                                          code = s.code();
                                                        } catch (...) {
                                                          code = std::make_error_code(std::errc::io_error);
                                                        }
                                                        completed.set_value(code);
                                                      })));
    });
    // The server runs it...
    REQUIRE(eventually([&] { return pid != 0 && active_queries(cluster.conninfo(), app, "%pg_sleep%") == 1; }));
    // ... a cancellation from the loop thread (as a timeout's would) ...
    asio::post(io, [&] { cancel.emit(asio::cancellation_type::terminal); });
    // ... completes the caller once the call has returned (smartasync's default) ...
    CHECK(completed.get_future().get() == asio::error::operation_aborted);
    // ... and the server confirms the query is gone: it did not run its 30 s.
    CHECK(active_queries(cluster.conninfo(), app, "%pg_sleep%") == 0);
    // The same connection serves the next query at once.
    CHECK(std::string(connections.acquire()->exec("SELECT 'next'").text(0, 0)) == "next");
  }
  CHECK(connections.connects() == 1);
  CHECK(pool.stats().cancelled == 10);

  work.reset();
  loop.join();
}

TEST_CASE("the HTTP server answers 504 at its search timeout, and the database stops the search", "[pg][cancel][server]") {
  auto& cluster = test_cluster::get();
  import_catalogue(cluster);
  const std::string app = "pg_search_tests timeout";
  connection_pool connections(cluster.options(app), 2);
  smartasync::blocking_pool pool{2, 16};
  // Every search sleeps 30 s on the server first.
  auto wrapped = make_pg_search(pool, connections, std::chrono::seconds(30));
  sqlite_search::server_options options;
  options.search_timeout = std::chrono::milliseconds(300);
  running_server server(sqlite_search::make_backend(wrapped, make_pg_probe(pool, connections)), options);

  sqlite_search::testing::http_client client(server.port(), 60);
  const auto r = client.get("/search?q=zebra");
  CHECK(r.status == 504);
  CHECK(json::parse(r.body)["error"] == "search timed out after 300 ms and was cancelled");
  CHECK(active_queries(cluster.conninfo(), app, "%pg_sleep%") == 0);
  CHECK(server.server.timed_out() == 1);
  CHECK(client.get("/health").status == 200);
}

TEST_CASE("shutdown with searches in flight: queued ones answered 503, running ones stopped on the server",
          "[pg][cancel][server][shutdown]") {
  auto& cluster = test_cluster::get();
  import_catalogue(cluster);
  const std::string app = "pg_search_tests shutdown";
  connection_pool connections(cluster.options(app), 2);
  smartasync::blocking_pool pool{2, 16};
  auto wrapped = make_pg_search(pool, connections, std::chrono::seconds(30));
  sqlite_search::server_options options;
  options.shutdown_grace = std::chrono::milliseconds(200);
  auto server = std::make_unique<running_server>(sqlite_search::make_backend(wrapped, make_pg_probe(pool, connections)),
                                                 options);
  const auto port = server->port();

  // Four searches: two run (one per pool thread), two wait in the pool's queue.
  std::vector<std::future<int>> answers;
  for (int i = 0; i < 4; ++i)
    answers.push_back(std::async(std::launch::async, [port] {
      sqlite_search::testing::http_client client(port, 60);
      return client.get("/search?q=zebra").status;
    }));
  REQUIRE(eventually([&] {
    const auto m = pool.stats();
    return m.running == 2 && m.queued == 2 && active_queries(cluster.conninfo(), app, "%pg_sleep%") == 2;
  }));

  server->server.stop();
  for (auto& a : answers)
    CHECK(a.get() == 503);
  const auto summary = server->server.shutdown_summary();
  server.reset(); // io.run() has returned
  CHECK(summary.cancelled_queued == 2);
  CHECK(summary.cancelled_running == 2);
  CHECK(summary.finished == 0);
  // The running searches did not go on sleeping on the server.
  CHECK(active_queries(cluster.conninfo(), app, "%pg_sleep%") == 0);
  CHECK(pool.stats().running == 0);
}

TEST_CASE("pg_cluster.sh takes a relative folder for every action", "[pg][cluster]") {
  char pattern[] = "/tmp/pg_cluster_relative.XXXXXX";
  REQUIRE(::mkdtemp(pattern));
  const std::filesystem::path parent = pattern;
  // Run as root, the cluster's owner (nobody) must reach the folder.
  std::filesystem::permissions(parent, std::filesystem::perms::others_exec | std::filesystem::perms::group_exec,
                               std::filesystem::perm_options::add);
  const auto script = [&](const std::string& action, const std::string& folder = "cluster") {
    const std::string command = "cd '" + parent.string() + "' && '" PG_CLUSTER_SCRIPT "' " + action + " " + folder +
                                " >>'" + (parent / "script.log").string() + "' 2>&1";
    return std::system(command.c_str());
  };
  const auto reachable = [](const std::string& conninfo) {
    try {
      connection probe({.conninfo = conninfo, .application_name = "pg_search_tests cluster"});
      return std::string(probe.exec("SELECT 'up'").text(0, 0)) == "up";
    } catch (const catalog::error&) { // down, or (its folder gone) unable to serve
      return false;
    }
  };

  REQUIRE(script("create") == 0);
  std::string conninfo;
  {
    std::ifstream in(parent / "cluster" / "conninfo");
    std::getline(in, conninfo);
  }
  REQUIRE(!conninfo.empty());
  CHECK(reachable(conninfo));

  CHECK(script("stop") == 0);
  CHECK(!reachable(conninfo));
  CHECK(script("start") == 0);
  CHECK(reachable(conninfo));
  CHECK(script("destroy") == 0);
  CHECK(!std::filesystem::exists(parent / "cluster"));
  CHECK(!reachable(conninfo)); // stopped, not left running without its folder

  // A folder that is not there is a clear error for stop and start, and nothing for destroy.
  CHECK(script("stop", "nosuchcluster") != 0);
  CHECK(script("destroy", "nosuchcluster") == 0);
  std::ifstream log(parent / "script.log");
  const std::string output((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  CHECK_THAT(output, Catch::Matchers::Contains("pg_cluster: nosuchcluster: no such folder"));
  std::filesystem::remove_all(parent);
}

TEST_CASE("classify_sqlstate tells a server away for now from a user's bad value and the rest", "[pg][errors]") {
  // Shutting down, crashed, starting up or shutting down, out of connection slots, connection failures.
  for (const char* s : {"57P01", "57P02", "57P03", "53300", "08000", "08001", "08003", "08004", "08006"}) {
    INFO(s);
    CHECK(classify_sqlstate(s) == error_kind::unavailable);
  }
  // Values the statement was given: data exceptions, syntax errors, limits exceeded.
  for (const char* s : {"22023", "22021", "22P05", "22P02", "22003", "42601", "54000", "54001"}) {
    INFO(s);
    CHECK(classify_sqlstate(s) == error_kind::bad_input);
  }
  // Faults of the program or the database: retrying or rewording would not help.
  for (const char* s : {"", "42P01", "57014", "57P04", "28P01", "3D000", "XX000", "40001", "5730", "57P011", "53100"}) {
    INFO(s);
    CHECK(classify_sqlstate(s) == error_kind::other);
  }
}

namespace {

// What one connection attempt says: "ok", "unavailable: ..." or "error SQLSTATE: ...".
std::string connect_outcome(const connection_options& options) {
  try {
    connection probe(options);
    return "ok";
  } catch (const catalog::unavailable& e) {
    return std::string("unavailable: ") + e.what();
  } catch (const pg_error& e) {
    return "error " + e.sqlstate() + ": " + e.what();
  }
}

} // namespace

TEST_CASE("a database shutting down is 503 with Retry-After, not 500, until it is back", "[pg][connections][server]") {
  auto& cluster = test_cluster::get();
  import_catalogue(cluster);
  connection_pool connections(cluster.options("pg_search_tests shutting down"), 2);
  smartasync::blocking_pool pool{2, 16};
  auto wrapped = make_pg_search(pool, connections);
  running_server server(sqlite_search::make_backend(wrapped, make_pg_probe(pool, connections)));

  // A smart shutdown waits for this session, refusing new ones meanwhile: the server's pool,
  // which has not connected yet, meets "the database system is shutting down" on its first search.
  std::optional<connection> held(std::in_place, cluster.options("pg_search_tests holder"));
  cluster.begin_smart_shutdown();
  std::string refused;
  REQUIRE(eventually([&] { return (refused = connect_outcome(cluster.options())) != "ok"; }));
  CHECK_THAT(refused, Catch::Matchers::StartsWith("unavailable: cannot connect to PostgreSQL") &&
                          Catch::Matchers::Contains("the database system is shutting down"));
  CHECK_THAT(refused, !Catch::Matchers::Contains("57P03") && !Catch::Matchers::Contains("LOCATION"));

  sqlite_search::testing::http_client client(server.port());
  auto r = client.get("/search?q=zebra");
  CHECK(r.status == 503);
  CHECK(r.header("Retry-After") == "1");
  CHECK_THAT(json::parse(r.body)["error"].get<std::string>(), Catch::Matchers::Contains("shutting down"));
  CHECK(client.get("/ready").status == 503);

  // Once it is down and up again, the next search (after the backoff) is answered.
  held.reset();
  REQUIRE(cluster.wait_stopped());
  cluster.start();
  REQUIRE(eventually([&] { return client.get("/search?q=zebra").status == 200; }));
}

TEST_CASE("a database out of connection slots is 503 with Retry-After, not 500", "[pg][connections][server]") {
  auto& cluster = test_cluster::get();
  import_catalogue(cluster);
  connection_pool connections(cluster.options("pg_search_tests full"), 2);
  smartasync::blocking_pool pool{2, 16};
  auto wrapped = make_pg_search(pool, connections);
  running_server server(sqlite_search::make_backend(wrapped, make_pg_probe(pool, connections)));

  // Take every slot the server has (pg_cluster.sh: max_connections 60).
  std::vector<connection> held;
  std::string refused;
  while (held.size() < 200) {
    try {
      held.emplace_back(cluster.options("pg_search_tests holder"));
    } catch (const catalog::error&) {
      refused = connect_outcome(cluster.options());
      break;
    }
  }
  INFO(held.size() << " connections held");
  CHECK_THAT(refused, Catch::Matchers::StartsWith("unavailable: cannot connect to PostgreSQL") &&
                          Catch::Matchers::Contains("too many clients"));

  sqlite_search::testing::http_client client(server.port());
  auto r = client.get("/search?q=zebra");
  CHECK(r.status == 503);
  CHECK(r.header("Retry-After") == "1");

  held.clear();
  REQUIRE(eventually([&] { return client.get("/search?q=zebra").status == 200; }));
}

TEST_CASE("a database restarted under load: every search is answered 200 or 503, never 500",
          "[pg][connections][server]") {
  auto& cluster = test_cluster::get();
  import_catalogue(cluster);
  connection_pool connections(cluster.options("pg_search_tests restart under load"), 4);
  smartasync::blocking_pool pool{4, 64};
  // Each search spends 20 ms on the server, so that some are running when it stops.
  auto wrapped = make_pg_search(pool, connections, std::chrono::milliseconds(20));
  running_server server(sqlite_search::make_backend(wrapped, make_pg_probe(pool, connections)));

  std::atomic<bool> done{false};
  std::mutex mutex;
  std::map<int, int> statuses;
  int without_retry_after = 0;
  std::vector<std::thread> clients;
  for (int i = 0; i < 6; ++i)
    clients.emplace_back([&] {
      std::optional<sqlite_search::testing::http_client> client;
      while (!done) {
        try {
          if (!client)
            client.emplace(server.port(), 30);
          const auto r = client->get("/search?q=zebra");
          std::lock_guard lock(mutex);
          ++statuses[r.status];
          if (r.status == 503 && r.header("Retry-After") != "1")
            ++without_retry_after;
          if (!r.keep_alive)
            client.reset();
        } catch (const std::exception&) {
          client.reset(); // a closed keep-alive connection: a new one
        }
      }
    });
  const auto count = [&](int status) {
    std::lock_guard lock(mutex);
    return statuses[status];
  };

  REQUIRE(eventually([&] { return count(200) >= 20; }));
  for (int round = 0; round < 2; ++round) {
    cluster.stop(); // fast: running queries are terminated
    const int before = count(200) + count(503);
    REQUIRE(eventually([&] { return count(200) + count(503) >= before + 20; })); // answered while it is down
    cluster.start();
    const int ok = count(200);
    REQUIRE(eventually([&] { return count(200) >= ok + 20; })); // and served again
  }
  done = true;
  for (auto& t : clients)
    t.join();

  std::lock_guard lock(mutex);
  for (const auto& [status, n] : statuses) {
    INFO(n << " answered " << status);
    CHECK((status == 200 || status == 503));
  }
  CHECK(statuses.contains(503));
  CHECK(without_retry_after == 0);
}
