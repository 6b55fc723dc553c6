// catalog.test.cpp - search, sync and error handling of catalog_db.
#include "catalog/catalog_db.hpp"
#include "catalog/connection_pool.hpp"
#include "catalog/generator.hpp"
#include "catalog/json.hpp"

#include "temp_dir.hpp"

#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <set>
#include <thread>

using namespace catalog;
using catalog::testing::temp_dir;

namespace {

std::vector<catalog_record> sample() {
  return {
      {"asio", "1.22-1", "libs", "Ada <ada@example.org>", "Cross-platform library for network programming"},
      {"netkit", "2.0-1", "net", "Ben <ben@example.org>", "Network tools built on asio, with asio examples"},
      {"sqlite3", "3.40-1", "database", "Cy <cy@example.org>", "Command line interface for SQLite 3"},
      {"unrelated", "0.1-1", "misc", "Di <di@example.org>", "Nothing to see here"},
  };
}

void fill(catalog_db& db, const std::vector<catalog_record>& records) {
  auto sync = db.begin_sync();
  sync.add(records);
  sync.commit();
}

std::vector<std::string> names(const std::vector<search_hit>& hits) {
  std::vector<std::string> out;
  for (const auto& h : hits)
    out.push_back(h.name);
  return out;
}

} // namespace

TEST_CASE("search ranks name matches above description matches", "[catalog][search]") {
  temp_dir dir;
  catalog_db db(dir / "c.db", open_mode::read_write);
  fill(db, sample());

  auto hits = db.search("asio", 10);
  REQUIRE(names(hits) == std::vector<std::string>{"asio", "netkit"});
  CHECK(hits[0].score < hits[1].score); // bm25: lower is better
  CHECK(hits[0].version == "1.22-1");
  CHECK(hits[0].section == "libs");

  CHECK(names(db.search("network", 10)) == std::vector<std::string>{"asio", "netkit"});
  CHECK(db.search("network", 1).size() == 1);
  CHECK(db.search("nosuchword", 10).empty());
}

TEST_CASE("search snippets highlight the matched terms", "[catalog][search]") {
  temp_dir dir;
  catalog_db db(dir / "c.db", open_mode::read_write);
  fill(db, sample());

  auto hits = db.search("sqlite", 10);
  REQUIRE(hits.size() == 1);
  CHECK(hits[0].snippet.find(std::string(highlight_begin) + "SQLite" + highlight_end) != std::string::npos);

  hits = db.search("net*", 10); // prefix query: netkit's name matches, so it ranks first
  REQUIRE(names(hits) == std::vector<std::string>{"netkit", "asio"});
  CHECK(hits[0].snippet.find(std::string(highlight_begin) + "Network" + highlight_end) != std::string::npos);
  CHECK(hits[1].snippet.find(std::string(highlight_begin) + "network" + highlight_end) != std::string::npos);
}

TEST_CASE("search snippets escape the text's own brackets, so that only matches read as [match]",
          "[catalog][search]") {
  temp_dir dir;
  catalog_db db(dir / "c.db", open_mode::read_write);
  fill(db, {{"brackets", "1", "misc", "Ed <e@example.org>", "Quagga reads [quux] and C:\\temp"}});

  const auto hits = db.search("quagga OR quux", 10);
  REQUIRE(hits.size() == 1);
  CHECK(hits[0].snippet == "[Quagga] reads \\[[quux]\\] and C:\\\\temp");
  CHECK(encode_snippet("a [b] \\ c") == "a \\[b\\] \\\\ c");
}

TEST_CASE("bad queries are rejected with a clear error and change nothing", "[catalog][errors]") {
  temp_dir dir;
  catalog_db db(dir / "c.db", open_mode::read_write);
  fill(db, sample());

  for (const char* query : {"", "   ", "\"unterminated", "asio AND", "nosuchcolumn:asio", "(asio", "!!!"}) {
    INFO("query: " << query);
    try {
      (void)db.search(query, 10);
      FAIL("no exception");
    } catch (const invalid_query& e) {
      CHECK(std::string_view(e.what()).starts_with("invalid search query: "));
    }
  }
  CHECK_THROWS_AS(db.search(std::string(catalog_db::max_query_bytes + 1, 'a'), 10), invalid_query);
  CHECK_THROWS_AS(db.search("asio", 0), invalid_limit);
  CHECK_THROWS_AS(db.search("asio", -5), invalid_limit);
  CHECK_THROWS_AS(db.search("asio", catalog_db::max_limit + 1), invalid_limit);
  CHECK(db.search("asio", catalog_db::max_limit).size() == 2);

  // The connection is still good and the data untouched.
  CHECK(db.size() == 4);
  CHECK(db.find("asio") == sample()[0]);
  CHECK(names(db.search("asio", 10)) == std::vector<std::string>{"asio", "netkit"});
}

TEST_CASE("a sync reports what it added, updated and deleted", "[catalog][sync]") {
  temp_dir dir;
  catalog_db db(dir / "c.db", open_mode::read_write);
  {
    auto sync = db.begin_sync();
    sync.add(sample());
    CHECK(sync.staged() == 4);
    CHECK(sync.commit() == sync_counts{.added = 4, .updated = 0, .deleted = 0, .unchanged = 0});
  }

  auto next = sample();
  next[1].description = "Network tools, rewritten with coroutines"; // updated
  next.erase(next.begin() + 3);                                       // "unrelated" deleted
  next.push_back({"fmt", "9.1-2", "libs", "Ed <ed@example.org>", "Formatting library"}); // added
  {
    auto sync = db.begin_sync();
    // Streamed in several batches, one of them naming a record twice (the last one wins).
    sync.add(std::span(next).subspan(0, 2));
    sync.add({"fmt", "0", "x", "y", "stale duplicate"});
    sync.add(std::span(next).subspan(2));
    CHECK(sync.staged() == 4);
    CHECK(sync.duplicates() == 1); // reported, not merged silently
    CHECK(sync.duplicate_names() == std::vector<std::string>{"fmt"});
    CHECK(sync.commit() == sync_counts{.added = 1, .updated = 1, .deleted = 1, .unchanged = 2});
  }
  CHECK(db.size() == 4);
  CHECK(db.find("fmt") == next.back());
  CHECK_FALSE(db.find("unrelated"));
  // The full-text index followed the diff.
  CHECK(names(db.search("coroutines", 10)) == std::vector<std::string>{"netkit"});
  CHECK(names(db.search("asio", 10)) == std::vector<std::string>{"asio"});
  CHECK(db.search("nothing", 10).empty());

  // The same snapshot again changes nothing.
  auto sync = db.begin_sync();
  sync.add(next);
  CHECK(sync.commit() == sync_counts{.added = 0, .updated = 0, .deleted = 0, .unchanged = 4});

  // An empty snapshot empties the catalogue.
  auto empty = db.begin_sync();
  CHECK(empty.commit() == sync_counts{.added = 0, .updated = 0, .deleted = 4, .unchanged = 0});
  CHECK(db.size() == 0);
}

TEST_CASE("a guarded commit refuses to delete everything or more than its share, and changes nothing",
          "[catalog][sync]") {
  temp_dir dir;
  catalog_db db(dir / "c.db", open_mode::read_write);
  fill(db, generate_catalog(10));
  const auto keep_first = [&](std::size_t n) {
    auto sync = db.begin_sync();
    const auto all = generate_catalog(10);
    sync.add(std::span(all).first(n));
    return sync;
  };

  SECTION("an empty snapshot") {
    auto sync = keep_first(0);
    try {
      (void)sync.commit(deletion_limit{.max_share = 1.0}); // even a share of 100% keeps "all" out
      FAIL("an empty snapshot was committed");
    } catch (const mass_deletion& e) {
      CHECK(e.would_delete() == 10);
      CHECK(e.catalogue_size() == 10);
      CHECK_THAT(e.what(), Catch::Contains("refusing to delete 10 of the catalogue's 10 records") &&
                               Catch::Contains("unchanged"));
    }
    CHECK(db.size() == 10);
    // The staged snapshot is kept: an unguarded commit is the explicit way through.
    CHECK(sync.commit() == sync_counts{.added = 0, .updated = 0, .deleted = 10, .unchanged = 0});
  }
  SECTION("more than the share") {
    auto sync = keep_first(4); // deletes 6 of 10
    CHECK_THROWS_AS(sync.commit(deletion_limit{.max_share = 0.5}), mass_deletion);
    CHECK(db.size() == 10);
    CHECK(sync.commit(deletion_limit{.max_share = 0.6}).deleted == 6); // exactly the share is allowed
  }
  SECTION("within the share") {
    auto sync = keep_first(5);
    CHECK(sync.commit(deletion_limit{}).deleted == 5);
  }
  SECTION("an empty catalogue loses nothing, whatever the snapshot") {
    auto empty = db.begin_sync();
    CHECK(empty.commit().deleted == 10);
    auto again = db.begin_sync();
    CHECK(again.commit(deletion_limit{.max_share = 0.0}).deleted == 0);
  }
}

TEST_CASE("an abandoned or failed sync leaves the previous catalogue intact", "[catalog][sync]") {
  temp_dir dir;
  catalog_db db(dir / "c.db", open_mode::read_write);
  fill(db, sample());
  catalog_db reader(dir / "c.db");

  SECTION("abandoned: destroyed without commit") {
    {
      auto sync = db.begin_sync();
      sync.add(generate_catalog(100));
      // Readers keep seeing the old catalogue while a sync is staged.
      CHECK(reader.size() == 4);
    }
    CHECK(db.size() == 4);
  }
  SECTION("a batch with an invalid record stages nothing of that batch") {
    auto sync = db.begin_sync();
    sync.add(sample()[0]);
    auto bad = sample();
    bad[2].name.clear();
    CHECK_THROWS_AS(sync.add(bad), invalid_record);
    CHECK(sync.staged() == 1);
    sync.rollback();
    CHECK_THROWS_AS(sync.add(sample()), std::logic_error);
  }
  SECTION("commit fails while another writer holds the lock; retry succeeds") {
    catalog_db impatient(dir / "c.db", open_mode::read_write, std::chrono::milliseconds(50));
    auto sync = impatient.begin_sync();
    sync.add(generate_catalog(10));

    // Another writer (here a raw connection, as another process would be) holds the write lock.
    sqlite3* other = nullptr;
    REQUIRE(sqlite3_open((dir / "c.db").c_str(), &other) == SQLITE_OK);
    REQUIRE(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
    try {
      (void)sync.commit();
      FAIL("commit succeeded under another writer's lock");
    } catch (const database_error& e) {
      CHECK(e.busy());
    }
    CHECK(reader.size() == 4);
    CHECK(impatient.size() == 4);
    REQUIRE(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(other);

    // The staged snapshot survived the failure: the retry applies it.
    CHECK(sync.commit() == sync_counts{.added = 10, .updated = 0, .deleted = 4, .unchanged = 0});
    CHECK(reader.size() == 10);
    return; // the checks below are about the unchanged catalogue
  }
  CHECK(reader.size() == 4);
  CHECK(db.find("netkit") == sample()[1]);
}

TEST_CASE("opening a missing, corrupt or foreign file is a database_error", "[catalog][errors]") {
  temp_dir dir;
  CHECK_THROWS_AS(catalog_db(dir / "missing.db"), database_error);
  CHECK_FALSE(std::filesystem::exists(dir / "missing.db")); // a reader never creates files

  {
    std::ofstream garbage(dir / "garbage.db", std::ios::binary);
    for (int i = 0; i < 512; ++i)
      garbage << "this is not an SQLite database ";
  }
  CHECK_THROWS_AS(catalog_db(dir / "garbage.db"), database_error);
  CHECK_THROWS_AS(catalog_db(dir / "garbage.db", open_mode::read_write), database_error);

  sqlite3* foreign = nullptr;
  REQUIRE(sqlite3_open((dir / "foreign.db").c_str(), &foreign) == SQLITE_OK);
  REQUIRE(sqlite3_exec(foreign, "CREATE TABLE t(x)", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(foreign);
  try {
    catalog_db db(dir / "foreign.db", open_mode::read_write);
    FAIL("opened a foreign database");
  } catch (const database_error& e) {
    CHECK(std::string_view(e.what()).find("something else") != std::string_view::npos);
  }
  CHECK_THROWS_AS(connection_pool(dir / "missing.db", 2), database_error);
}

TEST_CASE("read-only connections refuse to sync", "[catalog][errors]") {
  temp_dir dir;
  { catalog_db create(dir / "c.db", open_mode::read_write); }
  catalog_db db(dir / "c.db");
  CHECK_THROWS_AS(db.begin_sync(), std::logic_error);
  catalog_db writer(dir / "c.db", open_mode::read_write);
  auto sync = writer.begin_sync();
  CHECK_THROWS_AS(writer.begin_sync(), std::logic_error); // one sync per connection
}

TEST_CASE("a connection pool lends one connection per thread and searches in parallel", "[catalog][pool]") {
  temp_dir dir;
  {
    catalog_db db(dir / "c.db", open_mode::read_write);
    fill(db, generate_catalog(2000));
  }
  connection_pool pool(dir / "c.db", 3);
  CHECK(pool.opened() == 1);
  std::atomic<int> found{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        auto db = pool.acquire();
        found += static_cast<int>(db->search("network", 5).size());
      }
    });
  for (auto& t : threads)
    t.join();
  CHECK(found == 6 * 20 * 5);
  CHECK(pool.opened() <= 3);
}

TEST_CASE("the generator is deterministic and its names are unique", "[catalog][generator]") {
  CHECK(generate_record(42, 7) == generate_record(42, 7));
  CHECK_FALSE(generate_record(42, 7) == generate_record(42, 8));
  auto records = generate_catalog(5000);
  std::set<std::string> unique;
  for (const auto& r : records) {
    CHECK_FALSE(r.description.empty());
    unique.insert(r.name);
  }
  CHECK(unique.size() == records.size());
  // Pinned: the same corpus everywhere (a change here changes every test and benchmark input).
  CHECK(records[0] == generate_record(0));
}

TEST_CASE("records convert to and from JSON", "[catalog][json]") {
  const auto r = sample()[1];
  nlohmann::json j = r;
  CHECK(j["name"] == "netkit");
  CHECK(j.get<catalog_record>() == r);
  CHECK(nlohmann::json::parse(R"({"name":"x"})").get<catalog_record>() == catalog_record{"x", "", "", "", ""});
}

TEST_CASE("records read from JSON accept nulls and numbers, and name the field they reject", "[catalog][json]") {
  // What real APIs send: null for "none", numbers where the text is a number.
  CHECK(nlohmann::json::parse(R"({"name":"x","version":2,"section":null,"description":null,"maintainer":1.5})")
            .get<catalog_record>() == catalog_record{"x", "2", "", "1.5", ""});
  const auto rejected = [](const char* text) {
    try {
      (void)nlohmann::json::parse(text).get<catalog_record>();
    } catch (const invalid_record& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  CHECK_THAT(rejected(R"({"name":"x","version":["1"]})"), Catch::Contains("field \"version\"") &&
                                                               Catch::Contains("but is array"));
  CHECK_THAT(rejected(R"({"name":"x","description":{"short":"y"}})"), Catch::Contains("field \"description\""));
  CHECK_THAT(rejected(R"({"name":true})"), Catch::Contains("field \"name\"") && Catch::Contains("boolean"));
  CHECK_THAT(rejected(R"({"name":null})"), Catch::Contains("field \"name\" is null"));
  CHECK_THAT(rejected(R"({"version":"1"})"), Catch::Contains("field \"name\" is missing"));
  CHECK_THAT(rejected(R"(["x"])"), Catch::Contains("expected an object, got array"));
}

TEST_CASE("a catalogue corrupted after opening fails searches with database_error", "[catalog][errors]") {
  temp_dir dir;
  {
    catalog_db db(dir / "c.db", open_mode::read_write);
    fill(db, generate_catalog(3000));
  }
  // Keep page 1 (the header, so the file still opens) and overwrite everything after it.
  const auto size = std::filesystem::file_size(dir / "c.db");
  {
    std::fstream file(dir / "c.db", std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(4096);
    for (std::uintmax_t i = 4096; i < size; ++i)
      file.put(static_cast<char>(0xA5 ^ (i * 31)));
  }
  try {
    catalog_db db(dir / "c.db");
    (void)db.search("network", 10);
    FAIL("searched a corrupt file");
  } catch (const database_error& e) {
    INFO(e.what());
    CHECK(e.sqlite_code() != 0);
  }
}

TEST_CASE("interrupt() from another thread stops a running search, and the next one runs", "[catalog][search][interrupt]") {
  temp_dir dir;
  catalog_db db(dir / "catalog.db", open_mode::read_write);
  fill(db, generate_catalog(20000));
  const auto expected = db.search("a* OR s* OR lib*", 1000).size();

  // A heavy search, interrupted every 100 us by another thread (what a std::stop_callback
  // does when a cancelled call's token is stopped): one of them is caught mid-statement.
  std::atomic<bool> done{false};
  std::thread interrupter([&] {
    while (!done.load()) {
      db.interrupt();
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  });
  bool interrupted = false;
  for (int i = 0; i < 1000 && !interrupted; ++i) {
    try {
      (void)db.search("a* OR s* OR lib*", 1000);
    } catch (const database_error& e) {
      CHECK(e.interrupted());
      interrupted = true;
    }
  }
  done = true;
  interrupter.join();
  CHECK(interrupted);
  // Nothing is left pending on the connection: the same search completes in full.
  CHECK(db.search("a* OR s* OR lib*", 1000).size() == expected);
  db.interrupt(); // with nothing running: a no-op
  CHECK(db.search("a* OR s* OR lib*", 1000).size() == expected);
}

TEST_CASE("a record over max_record_bytes is refused by name, and nothing of its batch is staged", "[catalog][sync]") {
  temp_dir dir;
  catalog_db db(dir / "c.db", open_mode::read_write);
  auto records = sample();
  records[2].description = std::string(max_record_bytes - record_bytes(records[2]) + records[2].description.size(), 'x');
  CHECK(record_bytes(records[2]) == max_record_bytes); // at the cap: accepted
  records[3].description = std::string(max_record_bytes, 'x');
  auto sync = db.begin_sync();
  CHECK_THROWS_WITH(sync.add(records), Catch::Contains("invalid record \"unrelated\"") &&
                                           Catch::Contains("over the cap of 1048576 bytes per record"));
  CHECK(sync.staged() == 0);
  records.pop_back();
  sync.add(records);
  CHECK(sync.commit().added == 3);
}

TEST_CASE("a commit stopped through its stop token changes nothing and keeps the staged records",
          "[catalog][sync][interrupt]") {
  temp_dir dir;
  catalog_db db(dir / "c.db", open_mode::read_write);
  fill(db, {sample()[0]});
  auto sync = db.begin_sync();
  sync.add(sample());
  std::stop_source stop;
  stop.request_stop();
  try {
    (void)sync.commit(std::nullopt, stop.get_token());
    FAIL("the commit should have been interrupted");
  } catch (const database_error& e) {
    CHECK(e.interrupted());
  }
  CHECK(db.size() == 1);
  CHECK(sync.staged() == 4);
  CHECK(sync.commit(std::nullopt, std::stop_source().get_token()).added == 3); // a fresh token: commits
  CHECK(db.size() == 4);
}
