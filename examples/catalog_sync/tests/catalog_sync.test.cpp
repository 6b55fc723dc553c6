// Tests of the paginated catalogue sync against the local server: every convention, every
// injected fault, consistency on failure and cancellation, diff counts, bounded concurrency.
// No wall-clock upper bounds: the machine is shared; latencies are small and only counts are
// asserted.
#include "catalog_fetch.hpp"
#include "paginated_server.hpp"

#include "slow_commit.hpp"
#include "temp_dir.hpp"

#include <catch2/catch.hpp>

#include <catalog/catalog_db.hpp>
#include <catalog/generator.hpp>
#include <catalog/json.hpp>
#include <smartasync/block_on.hpp>

#include <fmt/format.h>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/use_future.hpp>

#include <algorithm>
#include <fstream>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using catalog_sync::fault;
using catalog_sync::pagination_style;

namespace {

struct recorded_events {
  std::mutex mutex;
  std::vector<catalog_sync::sync_event> all;

  catalog_sync::event_sink sink() {
    return [this](const catalog_sync::sync_event& e) {
      std::lock_guard lock(mutex);
      all.push_back(e);
    };
  }
  template <typename T>
  std::vector<T> of() {
    std::lock_guard lock(mutex);
    std::vector<T> out;
    for (const auto& e : all)
      if (const T* x = std::get_if<T>(&e))
        out.push_back(*x);
    return out;
  }
};

catalog_sync::sync_options options_for(const catalog_sync::paginated_server& server, pagination_style style,
                                       std::size_t concurrency = 4, std::size_t page_size = 20) {
  catalog_sync::sync_options o;
  o.url = server.url(style);
  o.style = style;
  o.concurrency = concurrency;
  o.page_size = page_size;
  o.connect_timeout = 2000ms;
  o.request_timeout = 5000ms;
  o.max_attempts = 4;
  o.retry_base_delay = 5ms;
  o.retry_max_delay = 50ms;
  o.seed = 7;
  return o;
}

catalog_sync::server_options with_latency(std::chrono::milliseconds latency) {
  catalog_sync::server_options o;
  o.latency = latency;
  return o;
}

catalog::sync_counts sync_now(const catalog_sync::sync_options& o, const std::filesystem::path& db,
                              recorded_events* events = nullptr) {
  catalog_sync::catalog_syncer syncer(o);
  return smartasync::block_on(syncer.run(db, events ? events->sink() : catalog_sync::event_sink{}));
}

/// The whole catalogue in `db`, checked record by record against `expected`.
void require_catalogue(const std::filesystem::path& db, const std::vector<catalog::catalog_record>& expected) {
  catalog::catalog_db reader(db);
  REQUIRE(reader.size() == expected.size());
  for (const auto& r : expected) {
    auto found = reader.find(r.name);
    REQUIRE(found.has_value());
    REQUIRE(*found == r);
  }
}

std::string failure_of(const catalog_sync::sync_options& o, const std::filesystem::path& db,
                       recorded_events* events = nullptr) {
  try {
    sync_now(o, db, events);
  } catch (const catalog_sync::sync_error& e) {
    return e.what();
  }
  FAIL("the sync was expected to fail");
  return {};
}

/// Resident memory of this process, in bytes: now (VmRSS) or at its peak (VmHWM) since the last
/// reset_peak_rss().
std::size_t rss_bytes(std::string_view field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind(field, 0) == 0)
      return std::stoull(line.substr(field.size() + 1)) * 1024; // "VmHWM:   12345 kB"
  FAIL("no " << field << " in /proc/self/status");
  return 0;
}
/// Makes VmHWM start again from the current VmRSS (Linux 4.0 and later).
void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

} // namespace

TEST_CASE("every pagination convention syncs the whole catalogue", "[catalog_sync]") {
  const auto style = GENERATE(pagination_style::offset, pagination_style::page, pagination_style::cursor);
  INFO("style: " << to_string(style));
  const auto records = catalog::generate_catalog(250, 3); // 13 pages of 20, the last one short
  catalog_sync::paginated_server server(records, {});
  catalog::testing::temp_dir dir;
  recorded_events events;

  const auto counts = sync_now(options_for(server, style), dir / "c.db", &events);

  CHECK(counts == catalog::sync_counts{.added = 250, .updated = 0, .deleted = 0, .unchanged = 0});
  require_catalogue(dir / "c.db", records);
  const auto started = events.of<catalog_sync::sync_started>();
  REQUIRE(started.size() == 1);
  if (style == pagination_style::cursor) {
    CHECK_FALSE(started[0].total_items.has_value()); // cursor APIs do not say
  } else {
    CHECK(started[0].total_items == 250u);
    CHECK(started[0].total_pages == 13u);
  }
  CHECK(events.of<catalog_sync::page_done>().size() == 13);
  CHECK(events.of<catalog_sync::page_retry>().empty());
  REQUIRE(events.of<catalog_sync::sync_completed>().size() == 1);
  CHECK(events.of<catalog_sync::sync_completed>()[0].items == 250);
  CHECK(std::holds_alternative<catalog_sync::sync_completed>(events.all.back()));
}

TEST_CASE("a server that caps the page size silently still yields every record", "[catalog_sync]") {
  const auto style = GENERATE(pagination_style::offset, pagination_style::page, pagination_style::cursor);
  INFO("style: " << to_string(style));
  const auto records = catalog::generate_catalog(130, 4);
  catalog_sync::paginated_server server(records, [] {
    catalog_sync::server_options o;
    o.max_page_size = 15;
    return o;
  }());
  catalog::testing::temp_dir dir;
  CHECK(sync_now(options_for(server, style, 4, 50), dir / "c.db").added == 130);
  require_catalogue(dir / "c.db", records);
}

TEST_CASE("429 with Retry-After is retried after exactly the delay the server asked for", "[catalog_sync]") {
  const auto records = catalog::generate_catalog(100, 5);
  catalog_sync::server_options so;
  so.retry_after_seconds = 1;
  so.script[2] = {fault::rate_limited, 1};
  catalog_sync::paginated_server server(records, so);
  catalog::testing::temp_dir dir;
  recorded_events events;

  CHECK(sync_now(options_for(server, pagination_style::offset), dir / "c.db", &events).added == 100);

  const auto retries = events.of<catalog_sync::page_retry>();
  REQUIRE(retries.size() == 1);
  CHECK(retries[0].page == 2);
  CHECK(retries[0].attempt == 1);
  CHECK(retries[0].delay == 1000ms); // Retry-After, not the (much smaller) computed backoff
  CHECK_THAT(retries[0].reason, Catch::Contains("HTTP 429") && Catch::Contains("Retry-After: 1"));
  CHECK(server.stats().rate_limited == 1);
  require_catalogue(dir / "c.db", records);
}

TEST_CASE("5xx, timeouts and truncated bodies are retried", "[catalog_sync]") {
  const auto records = catalog::generate_catalog(120, 6);
  catalog_sync::server_options so;
  so.slow_delay = 3000ms;
  so.script[1] = {fault::server_error, 2};
  so.script[3] = {fault::slow, 1};
  so.script[4] = {fault::truncated, 1};
  so.script[5] = {fault::malformed, 1};
  catalog_sync::paginated_server server(records, so);
  catalog::testing::temp_dir dir;
  recorded_events events;
  auto o = options_for(server, pagination_style::offset);
  o.request_timeout = 300ms; // the slow page takes 3 s

  CHECK(sync_now(o, dir / "c.db", &events).added == 120);
  require_catalogue(dir / "c.db", records);

  auto retries = events.of<catalog_sync::page_retry>();
  // On a slow (sanitizer) run the machine adds retries of its own: an unscripted page can miss
  // the 300 ms timeout (curl's first connection under TSan), and a retry of the slow page,
  // waiting for the thread the timed-out call holds until curl gives up, can pass its deadline
  // still queued ("not started within ..."). Those depend on the machine's speed; the server's
  // faults must each cause exactly one retry.
  std::erase_if(retries, [&](const auto& r) {
    return !so.script.contains(r.page) || r.reason.starts_with("not started within");
  });
  std::sort(retries.begin(), retries.end(),
            [](const auto& a, const auto& b) { return std::pair(a.page, a.attempt) < std::pair(b.page, b.attempt); });
  for (const auto& r : retries)
    UNSCOPED_INFO("retry: page " << r.page << " attempt " << r.attempt << ": " << r.reason);
  REQUIRE(retries.size() == 5);
  CHECK(retries[0].page == 1);
  CHECK_THAT(retries[0].reason, Catch::StartsWith("HTTP 50"));
  CHECK(retries[1].page == 1);
  CHECK(retries[1].attempt == 2);
  CHECK(retries[2].page == 3);
  CHECK_THAT(retries[2].reason, Catch::Contains("timed out") || Catch::Contains("no response within"));
  CHECK(retries[3].page == 4);
  CHECK_THAT(retries[3].reason, Catch::Contains("connection error"));
  CHECK(retries[4].page == 5);
  CHECK_THAT(retries[4].reason, Catch::Contains("malformed JSON"));
  const auto s = server.stats();
  CHECK(s.server_errors == 2);
  CHECK(s.slow == 1);
  CHECK(s.truncated == 1);
  CHECK(s.malformed == 1);
}

TEST_CASE("a page that stays malformed fails the run naming the page and the reason, and the old catalogue stays",
          "[catalog_sync]") {
  const auto style = GENERATE(pagination_style::offset, pagination_style::cursor);
  INFO("style: " << to_string(style));
  const auto before = catalog::generate_catalog(60, 7);
  catalog_sync::paginated_server server(before, {});
  catalog::testing::temp_dir dir;
  REQUIRE(sync_now(options_for(server, style), dir / "c.db").added == 60);

  server.set_catalogue(catalog_sync::edit_catalogue(catalog::generate_catalog(200, 7)).first);
  server.set_script({{4, {fault::malformed, 0}}});
  auto o = options_for(server, style);
  o.max_attempts = 3;
  recorded_events events;
  const std::string message = failure_of(o, dir / "c.db", &events);

  CHECK_THAT(message, Catch::Contains("page 5") && Catch::Contains("malformed JSON") &&
                          Catch::Contains("3 attempts") && Catch::Contains("GET http://127.0.0.1"));
  CHECK(events.of<catalog_sync::page_retry>().size() == 2);
  const auto failed = events.of<catalog_sync::sync_failed>();
  REQUIRE(failed.size() == 1);
  CHECK_FALSE(failed[0].cancelled);
  CHECK_THAT(failed[0].message, Catch::Contains("catalogue is unchanged"));
  require_catalogue(dir / "c.db", before);
}

TEST_CASE("4xx is not retried", "[catalog_sync]") {
  const auto records = catalog::generate_catalog(100, 8);
  catalog_sync::server_options so;
  so.script[2] = {fault::bad_request, 0};
  catalog_sync::paginated_server server(records, so);
  catalog::testing::temp_dir dir;
  recorded_events events;

  const std::string message = failure_of(options_for(server, pagination_style::page), dir / "c.db", &events);

  CHECK_THAT(message, Catch::Contains("page 3") && Catch::Contains("HTTP 400") && Catch::Contains("1 attempt"));
  CHECK(events.of<catalog_sync::page_retry>().empty());
  CHECK(server.stats().bad_requests == 1);
  CHECK(catalog::catalog_db(dir / "c.db").size() == 0); // created, never committed
}

TEST_CASE("a failure in the middle of a run leaves the previous catalogue intact", "[catalog_sync]") {
  const auto before = catalog::generate_catalog(300, 9);
  catalog_sync::paginated_server server(before, {});
  catalog::testing::temp_dir dir;
  REQUIRE(sync_now(options_for(server, pagination_style::offset), dir / "c.db").added == 300);

  // Most pages of the new snapshot arrive and are staged; page 9 keeps failing.
  server.set_catalogue(catalog_sync::edit_catalogue(before).first);
  server.set_script({{8, {fault::server_error, 0}}});
  auto o = options_for(server, pagination_style::offset);
  o.max_attempts = 2;
  recorded_events events;
  CHECK_THAT(failure_of(o, dir / "c.db", &events), Catch::Contains("page 9") && Catch::Contains("HTTP 50"));
  CHECK(events.of<catalog_sync::page_done>().size() >= 1);
  require_catalogue(dir / "c.db", before);
}

TEST_CASE("the diff counts describe what changed since the last sync", "[catalog_sync]") {
  const auto before = catalog::generate_catalog(400, 10);
  catalog_sync::paginated_server server(before, {});
  catalog::testing::temp_dir dir;
  const auto o = options_for(server, pagination_style::page, 8, 25);
  CHECK(sync_now(o, dir / "c.db") == catalog::sync_counts{.added = 400, .updated = 0, .deleted = 0, .unchanged = 0});

  auto [after, expected] = catalog_sync::edit_catalogue(before, 12);
  server.set_catalogue(after);
  CHECK(expected.deleted == 20);
  CHECK(expected.updated == 40);
  CHECK(sync_now(o, dir / "c.db") == expected);
  require_catalogue(dir / "c.db", after);
  CHECK(sync_now(o, dir / "c.db") ==
        catalog::sync_counts{.added = 0, .updated = 0, .deleted = 0, .unchanged = after.size()});
}

TEST_CASE("cancelling a run part-way leaves the previous catalogue intact", "[catalog_sync]") {
  const auto before = catalog::generate_catalog(100, 11);
  catalog_sync::paginated_server server(before, with_latency(10ms));
  catalog::testing::temp_dir dir;
  REQUIRE(sync_now(options_for(server, pagination_style::offset), dir / "c.db").added == 100);
  server.set_catalogue(catalog_sync::edit_catalogue(catalog::generate_catalog(800, 11)).first);

  asio::io_context io;
  asio::cancellation_signal cancel;
  recorded_events events;
  std::size_t pages_seen = 0; // touched on io's thread only
  catalog_sync::catalog_syncer syncer(options_for(server, pagination_style::offset, 2, 20));
  auto sink = events.sink();
  auto done = asio::co_spawn(io,
                             syncer.run(dir / "c.db",
                                        [&](const catalog_sync::sync_event& e) {
                                          sink(e);
                                          if (std::holds_alternative<catalog_sync::page_done>(e) && ++pages_seen == 3)
                                            asio::post(io, [&] { cancel.emit(asio::cancellation_type::terminal); });
                                        }),
                             asio::bind_cancellation_slot(cancel.slot(), asio::use_future));
  std::thread runner([&] { io.run(); });
  try {
    done.get();
    FAIL("the run should have been cancelled");
  } catch (const std::system_error& e) {
    CHECK(e.code() == asio::error::operation_aborted);
  }
  runner.join();

  const auto failed = events.of<catalog_sync::sync_failed>();
  REQUIRE(failed.size() == 1);
  CHECK(failed[0].cancelled);
  CHECK(events.of<catalog_sync::page_done>().size() < 40);
  require_catalogue(dir / "c.db", before);
}

TEST_CASE("the event stream delivers the run in order, and leaving it early cancels the run", "[catalog_sync]") {
  const auto before = catalog::generate_catalog(80, 12);
  catalog_sync::paginated_server server(before, with_latency(5ms));
  catalog::testing::temp_dir dir;
  catalog_sync::catalog_syncer syncer(options_for(server, pagination_style::offset, 4, 10));

  SECTION("to the end") {
    std::vector<std::size_t> kinds;
    auto events = catalog_sync::sync_events(syncer, dir / "c.db"); // (not in the range-init:
    for (const auto& e : *events)                                  //  the temporary would die)
      kinds.push_back(e.index());
    REQUIRE(kinds.size() == 1 + 8 + 1);
    CHECK(kinds.front() == 0);                          // sync_started
    CHECK(std::count(kinds.begin(), kinds.end(), 1) == 8); // page_done
    CHECK(kinds.back() == 3);                           // sync_completed
    require_catalogue(dir / "c.db", before);
  }
  SECTION("breaking out") {
    REQUIRE(sync_now(options_for(server, pagination_style::offset), dir / "c.db").added == 80);
    server.set_catalogue(catalog::generate_catalog(500, 99));
    {
      auto events = catalog_sync::sync_events(syncer, dir / "c.db");
      std::size_t pages = 0;
      for (const auto& e : *events)
        if (std::holds_alternative<catalog_sync::page_done>(e) && ++pages == 2)
          break;
    } // the stream waits for the cancelled run to roll back
    require_catalogue(dir / "c.db", before);
  }
}

TEST_CASE("the server never sees more than K requests in flight", "[catalog_sync]") {
  const auto records = catalog::generate_catalog(300, 13);
  catalog_sync::paginated_server server(records, with_latency(30ms));
  catalog::testing::temp_dir dir;

  for (std::size_t k : {1u, 3u, 6u}) {
    CAPTURE(k);
    server.reset_stats();
    const auto counts = sync_now(options_for(server, pagination_style::offset, k, 10), dir / "c.db");
    CHECK(counts.added + counts.unchanged == 300);
    const auto s = server.stats();
    CHECK(s.requests == 30);
    CHECK(s.max_in_flight <= k);
    if (k > 1)
      CHECK(s.max_in_flight >= 2); // it did fan out
  }
  // Cursor pagination cannot fan out: one request at a time, pipelined with the writes.
  server.reset_stats();
  sync_now(options_for(server, pagination_style::cursor, 6, 10), dir / "c.db");
  CHECK(server.stats().max_in_flight == 1);
}

TEST_CASE("random 429s and 5xx: every fault is retried and the data is exact", "[catalog_sync]") {
  const auto records = catalog::generate_catalog(400, 14);
  catalog_sync::server_options so;
  so.rate_429 = 0.15;
  so.rate_5xx = 0.1;
  so.retry_after_seconds = 0;
  so.seed = 42;
  catalog_sync::paginated_server server(records, so);
  catalog::testing::temp_dir dir;
  recorded_events events;
  auto o = options_for(server, pagination_style::offset, 8, 20);
  o.max_attempts = 8;

  CHECK(sync_now(o, dir / "c.db", &events).added == 400);
  require_catalogue(dir / "c.db", records);
  const auto s = server.stats();
  CHECK(s.rate_limited + s.server_errors > 0);
  CHECK(events.of<catalog_sync::page_retry>().size() == s.rate_limited + s.server_errors);
  CHECK(events.of<catalog_sync::sync_completed>()[0].retries == s.rate_limited + s.server_errors);
}

// --- a sync never deletes what it did not prove gone ---------------------------------------------

TEST_CASE("a bare-array offset API that caps the page size silently is synced whole", "[catalog_sync][deletion]") {
  // The first page has 15 items for a limit of 50 and says nothing more: the end, or a cap.
  // Taking it as the end committed 15 records (and deleted the rest of an existing catalogue).
  const bool total_header = GENERATE(false, true);
  INFO("X-Total-Count: " << total_header);
  const auto records = catalog::generate_catalog(130, 4);
  catalog_sync::server_options so;
  so.bare_offset_pages = true;
  so.offset_total_header = total_header;
  so.max_page_size = 15;
  catalog_sync::paginated_server server(std::vector(records.begin(), records.begin() + 60), so);
  catalog::testing::temp_dir dir;
  REQUIRE(sync_now(options_for(server, pagination_style::offset, 4, 50), dir / "c.db").added == 60);

  server.set_catalogue(records);
  server.reset_stats();
  recorded_events events;
  const auto counts = sync_now(options_for(server, pagination_style::offset, 4, 50), dir / "c.db", &events);

  CHECK(counts == catalog::sync_counts{.added = 70, .updated = 0, .deleted = 0, .unchanged = 60});
  require_catalogue(dir / "c.db", records);
  const auto started = events.of<catalog_sync::sync_started>();
  REQUIRE(started.size() == 1);
  CHECK(started[0].requested_page_size == 50);
  CHECK(started[0].page_size == 15);
  const auto requests = server.stats().requests;
  if (total_header) {
    // --total-header is read in the offset style too: the count is known, and checked.
    CHECK(started[0].total_items == 130u);
    CHECK(started[0].total_pages == 9u);
    CHECK(started[0].page_size_capped);
    CHECK_FALSE(started[0].until_empty_page);
    CHECK(requests == 9);
  } else {
    CHECK_FALSE(started[0].total_items.has_value());
    CHECK(started[0].until_empty_page);
    // 9 pages with items, the empty 10th proving the end, at most K-1 more already in flight.
    CHECK(requests >= 10);
    CHECK(requests <= 9 + 4);
  }
}

TEST_CASE("without a total, K pages stay in flight past the unknown end, which an empty page proves",
          "[catalog_sync][deletion]") {
  const auto records = catalog::generate_catalog(300, 13);
  catalog_sync::server_options so = with_latency(30ms);
  so.bare_offset_pages = true;
  catalog_sync::paginated_server server(records, so);
  catalog::testing::temp_dir dir;
  recorded_events events;

  CHECK(sync_now(options_for(server, pagination_style::offset, 6, 10), dir / "c.db", &events).added == 300);

  require_catalogue(dir / "c.db", records);
  const auto s = server.stats();
  CHECK(s.max_in_flight <= 6);
  CHECK(s.max_in_flight >= 2); // it fanned out (one page at a time before)
  CHECK(s.requests >= 31);     // 30 pages with items and the empty one
  CHECK(s.requests <= 30 + 6);
  CHECK(events.of<catalog_sync::page_done>().size() == 30);
  REQUIRE(events.of<catalog_sync::sync_started>().size() == 1);
  CHECK(events.of<catalog_sync::sync_started>()[0].until_empty_page);
}

TEST_CASE("an empty snapshot does not wipe the catalogue: the deletion guard refuses it", "[catalog_sync][deletion]") {
  const auto style = GENERATE(pagination_style::offset, pagination_style::page, pagination_style::cursor);
  INFO("style: " << to_string(style));
  const auto before = catalog::generate_catalog(200, 21);
  catalog_sync::paginated_server server(before, {});
  catalog::testing::temp_dir dir;
  REQUIRE(sync_now(options_for(server, style), dir / "c.db").added == 200);

  // A filter that matches nothing: `[]`, total 0, a perfectly well-formed answer.
  auto o = options_for(server, style);
  o.url += "?section=nosuch";
  recorded_events events;
  try {
    sync_now(o, dir / "c.db", &events);
    FAIL("an empty snapshot was committed");
  } catch (const catalog::mass_deletion& e) {
    CHECK(e.would_delete() == 200);
  }
  const auto failed = events.of<catalog_sync::sync_failed>();
  REQUIRE(failed.size() == 1);
  CHECK(failed[0].refused);
  CHECK_FALSE(failed[0].cancelled);
  CHECK_THAT(failed[0].message, Catch::Contains("refusing to delete 200 of the catalogue's 200 records") &&
                                    Catch::Contains("unchanged") && Catch::Contains("--allow-mass-delete"));
  CHECK(events.of<catalog_sync::sync_completed>().empty());
  require_catalogue(dir / "c.db", before);

  // Said explicitly, it goes through.
  o.allow_mass_delete = true;
  CHECK(sync_now(o, dir / "c.db") == catalog::sync_counts{.added = 0, .updated = 0, .deleted = 200, .unchanged = 0});
  CHECK(catalog::catalog_db(dir / "c.db").size() == 0);
}

TEST_CASE("the deletion guard refuses more than the configured share", "[catalog_sync][deletion]") {
  const auto before = catalog::generate_catalog(200, 22);
  catalog_sync::paginated_server server(before, {});
  catalog::testing::temp_dir dir;
  auto o = options_for(server, pagination_style::page);
  REQUIRE(sync_now(o, dir / "c.db").added == 200);

  const std::vector<catalog::catalog_record> kept(before.begin(), before.begin() + 80); // 120 gone: 60%
  server.set_catalogue(kept);
  CHECK_THROWS_AS(sync_now(o, dir / "c.db"), catalog::mass_deletion); // the default share is 50%
  require_catalogue(dir / "c.db", before);
  o.max_delete_share = 0.6;
  CHECK(sync_now(o, dir / "c.db").deleted == 120);
  require_catalogue(dir / "c.db", kept);
}

TEST_CASE("records with null and numeric fields are read, and other shapes fail at once naming page, item and field",
          "[catalog_sync][deletion]") {
  const auto records = catalog::generate_catalog(30, 23);
  nlohmann::json items = records;
  auto expected = records;
  items[3]["description"] = nullptr;
  expected[3].description = "";
  items[5]["version"] = 2;
  expected[5].version = "2";
  items[7]["version"] = 1.5;
  expected[7].version = "1.5";
  items[10].erase("section");
  expected[10].section = "";
  catalog_sync::paginated_server server({}, {});
  server.set_items(items);
  catalog::testing::temp_dir dir;
  const auto style = GENERATE(pagination_style::offset, pagination_style::cursor);
  INFO("style: " << to_string(style));

  CHECK(sync_now(options_for(server, style, 4, 10), dir / "c.db").added == 30);
  require_catalogue(dir / "c.db", expected);

  // A field no reading makes sense of: deterministic, so one attempt, and the message says where.
  items[13]["version"] = nlohmann::json::array({"1.0"});
  server.set_items(items);
  server.reset_stats();
  recorded_events events;
  const std::string message = failure_of(options_for(server, style, 4, 10), dir / "c.db", &events);
  CHECK_THAT(message, Catch::Contains("page 2 failed after 1 attempt:") && Catch::Contains("item 3 of the page") &&
                          Catch::Contains(records[13].name) && Catch::Contains("field \"version\"") &&
                          Catch::Contains("but is array"));
  CHECK(events.of<catalog_sync::page_retry>().empty()); // not retried
  require_catalogue(dir / "c.db", expected);
}

TEST_CASE("duplicate names are reported in the summary, not merged silently", "[catalog_sync][deletion]") {
  auto records = catalog::generate_catalog(250, 24);
  records[180].name = records[40].name; // served twice; the later one is kept
  catalog_sync::paginated_server server(records, {});
  catalog::testing::temp_dir dir;
  recorded_events events;

  // Cursors do not shift when the collection changes: a repeated name is the API's own.
  const auto counts = sync_now(options_for(server, pagination_style::cursor), dir / "c.db", &events);

  CHECK(counts.added == 249);
  const auto done = events.of<catalog_sync::sync_completed>();
  REQUIRE(done.size() == 1);
  CHECK(done[0].items == 250);
  CHECK(done[0].duplicates == 1);
  CHECK(done[0].duplicate_names == std::vector<std::string>{records[40].name});
  CHECK(catalog::catalog_db(dir / "c.db").size() == 249);
}

TEST_CASE("an API that ignores the offset parameter fails the run instead of looping", "[catalog_sync][deletion]") {
  // A misspelt --offset-param: every page is the first one, and no page is ever empty.
  const auto records = catalog::generate_catalog(130, 25);
  catalog_sync::server_options so;
  so.bare_offset_pages = true;
  catalog_sync::paginated_server server(std::vector(records.begin(), records.begin() + 60), so);
  catalog::testing::temp_dir dir;
  REQUIRE(sync_now(options_for(server, pagination_style::offset, 4, 20), dir / "c.db").added == 60);

  server.set_catalogue(records);
  auto o = options_for(server, pagination_style::offset, 4, 20);
  o.names.offset_param = "skip";
  CHECK_THAT(failure_of(o, dir / "c.db"),
             Catch::Contains("both start with") && Catch::Contains("ignores the offset parameter") &&
                 Catch::Contains("--offset-param skip"));
  require_catalogue(dir / "c.db", std::vector(records.begin(), records.begin() + 60));
}

TEST_CASE("a run served a different count than the API announced fails and commits nothing",
          "[catalog_sync][deletion]") {
  const auto style = GENERATE(pagination_style::offset, pagination_style::page);
  const long skew = GENERATE(1L, -5L);
  INFO("style: " << to_string(style) << ", skew " << skew);
  const auto before = catalog::generate_catalog(130, 26);
  catalog_sync::paginated_server server(before, {});
  catalog::testing::temp_dir dir;
  REQUIRE(sync_now(options_for(server, style), dir / "c.db").added == 130);

  auto after = catalog_sync::edit_catalogue(before).first;
  catalog_sync::server_options so;
  so.total_skew = skew;
  catalog_sync::paginated_server liar(after, so);
  const auto served = after.size();
  CHECK_THAT(failure_of(options_for(liar, style), dir / "c.db"),
             Catch::Contains(fmt::format("announced {} items but served {}", static_cast<long>(served) + skew, served)));
  require_catalogue(dir / "c.db", before);
}

TEST_CASE("a name served twice by offset or page numbers fails the run, naming the page and the name",
          "[catalog_sync][snapshot]") {
  const auto style = GENERATE(pagination_style::offset, pagination_style::page);
  INFO("style: " << to_string(style));
  const auto before = catalog::generate_catalog(100, 27);
  auto records = catalog::generate_catalog(250, 24);
  records[180].name = records[40].name;
  catalog_sync::paginated_server server(before, {});
  catalog::testing::temp_dir dir;
  REQUIRE(sync_now(options_for(server, style), dir / "c.db").added == 100);

  server.set_catalogue(records);
  CHECK_THAT(failure_of(options_for(server, style), dir / "c.db"),
             Catch::Contains("page 10 repeats 1 record served earlier in the run (" + records[40].name + ")"));
  require_catalogue(dir / "c.db", before);
}

TEST_CASE("a source that changes during the run fails it, naming the page and what changed, and commits nothing",
          "[catalog_sync][snapshot]") {
  // 2000 records in pages of 100; once the first page is out, 10 records are inserted in
  // front: every later page shifts by 10, its first 10 names were on the page before it, and
  // the last 10 records of the collection would be skipped (and deleted).
  struct variant {
    const char* what;
    pagination_style style;
    bool bare = false;
    bool header = false;
    const char* expected;
  };
  const auto v = GENERATE(variant{"offset, total in the body", pagination_style::offset, false, false,
                                  "announced 2010 items where the first page announced 2000"},
                          variant{"page, X-Total-Count and Link", pagination_style::page, false, false,
                                  "announced 2010 items where the first page announced 2000"},
                          variant{"offset, total in a header", pagination_style::offset, true, true,
                                  "announced 2010 items where the first page announced 2000"},
                          variant{"offset, no total at all", pagination_style::offset, true, false,
                                  "repeats 10 records served earlier in the run"});
  INFO(v.what);
  const auto before = catalog::generate_catalog(2000, 28);
  catalog_sync::paginated_server steady(before, {});
  catalog::testing::temp_dir dir;
  REQUIRE(sync_now(options_for(steady, v.style, 4, 100), dir / "c.db").added == 2000);

  catalog_sync::server_options so;
  so.shift_after_first_page = 10;
  so.bare_offset_pages = v.bare;
  so.offset_total_header = v.header;
  catalog_sync::paginated_server shifting(before, so);
  recorded_events events;
  const std::string message = failure_of(options_for(shifting, v.style, 4, 100), dir / "c.db", &events);
  CHECK_THAT(message, Catch::Contains(v.expected) && Catch::Matches(".*page \\d+ .*"));
  const auto failed = events.of<catalog_sync::sync_failed>();
  REQUIRE(failed.size() == 1);
  CHECK_FALSE(failed[0].cancelled);
  CHECK_THAT(failed[0].message, Catch::Contains("nothing was committed"));
  CHECK(events.of<catalog_sync::sync_completed>().empty());
  require_catalogue(dir / "c.db", before);
}

TEST_CASE("a gzip bomb or an endless body fails its page at the body cap, and memory stays bounded",
          "[catalog_sync][limits]") {
  const auto kind = GENERATE(fault::gzip_bomb, fault::endless);
  INFO("fault: " << to_string(kind));
  const auto before = catalog::generate_catalog(200, 29);
  catalog_sync::server_options so;
  so.threads = 8;
  so.gzip_bomb_bytes = std::size_t{128} << 20; // 128 KiB on the wire
  catalog_sync::paginated_server server(before, so);
  catalog::testing::temp_dir dir;
  REQUIRE(sync_now(options_for(server, pagination_style::offset, 2, 20), dir / "c.db").added == 200);

  server.set_script({{2, {kind, 0}}}); // page 3, every time it is asked for
  auto o = options_for(server, pagination_style::offset, 2, 20);
  o.max_body_bytes = std::size_t{1} << 20;
  o.request_timeout = 2000ms; // only a bound on the endless body should the cap not stop it
  server.reset_stats();
  reset_peak_rss();
  const std::size_t baseline = rss_bytes("VmRSS");
  const std::string message = failure_of(o, dir / "c.db");
  const std::size_t growth = rss_bytes("VmHWM") - std::min(baseline, rss_bytes("VmHWM"));

  CHECK_THAT(message, Catch::Contains("page 3 failed after 1 attempt: response body over 1048576 bytes"));
  // Each of the K = 2 pages in flight holds at most the cap of body plus its records: a
  // generous bound (sanitizer builds included) is far below the 128 MiB this bomb inflates to.
  const std::size_t bound = (std::size_t{32} << 20) + 16 * o.concurrency * o.max_body_bytes;
  INFO("peak RSS growth " << growth / 1024 << " KiB, bound " << bound / 1024 << " KiB");
  CHECK(growth < bound);
  const auto stats = server.stats();
  CHECK(stats.gzip_bombs + stats.endless == 1); // not retried
  require_catalogue(dir / "c.db", before);
}

TEST_CASE("a record over the size cap fails its page at once, naming the page and the record",
          "[catalog_sync][limits]") {
  auto records = catalog::generate_catalog(60, 31);
  records[45].description = std::string(catalog::max_record_bytes, 'x');
  catalog_sync::paginated_server server(catalog::generate_catalog(30, 31), {});
  catalog::testing::temp_dir dir;
  const auto before = catalog::generate_catalog(30, 31);
  REQUIRE(sync_now(options_for(server, pagination_style::offset), dir / "c.db").added == 30);

  server.set_catalogue(records);
  CHECK_THAT(failure_of(options_for(server, pagination_style::offset), dir / "c.db"),
             Catch::Contains("page 3 failed after 1 attempt: record too large: item 5 of the page (name \"" +
                             records[45].name + "\")") &&
                 Catch::Contains("over the cap of 1048576 bytes per record"));
  require_catalogue(dir / "c.db", before);
}

TEST_CASE("cancelling a run during its commit interrupts the commit: nothing is committed",
          "[catalog_sync][shutdown]") {
  const auto before = catalog::generate_catalog(100, 32);
  catalog_sync::paginated_server server(before, {});
  catalog::testing::temp_dir dir;
  REQUIRE(sync_now(options_for(server, pagination_style::offset), dir / "c.db").added == 100);
  auto after = before;
  for (auto& r : catalog_sync::testing::heavy_records(12)) // seconds of full-text indexing
    after.push_back(std::move(r));
  server.set_catalogue(after);

  asio::io_context io;
  asio::cancellation_signal cancel;
  recorded_events events;
  catalog_sync::catalog_syncer syncer(options_for(server, pagination_style::offset, 2, 4));
  auto done = asio::co_spawn(io, syncer.run(dir / "c.db", events.sink()),
                             asio::bind_cancellation_slot(cancel.slot(), asio::use_future));
  std::thread runner([&] { io.run(); });
  const bool committing = catalog_sync::testing::wait_for_commit(dir / "c.db");
  asio::post(io, [&] { cancel.emit(asio::cancellation_type::terminal); });
  std::optional<std::error_code> error;
  try {
    done.get();
  } catch (const std::system_error& e) {
    error = e.code();
  }
  runner.join();

  REQUIRE(committing);
  CHECK(events.of<catalog_sync::sync_completed>().empty()); // the commit did not run to its end
  REQUIRE(error.has_value());
  CHECK(*error == asio::error::operation_aborted);
  const auto failed = events.of<catalog_sync::sync_failed>();
  REQUIRE(failed.size() == 1);
  CHECK(failed[0].cancelled);
  CHECK_THAT(failed[0].message, Catch::Contains("nothing was committed"));
  require_catalogue(dir / "c.db", before);
}
