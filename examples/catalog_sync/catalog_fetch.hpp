// catalog_sync/catalog_fetch.hpp - a paginated HTTP API synced into a catalog_db, concurrently.
// Distributed under the Boost Software License, Version 1.0.
//
// The blocking pieces (a libcurl GET, SQLite writes) are wrapped once with
// smartasync::smart_async and composed with the library's fan_out, retry and with_timeout;
// the progress events reach a synchronous consumer through smartasync::sync_stream.
#ifndef CATALOG_SYNC_CATALOG_FETCH_HPP
#define CATALOG_SYNC_CATALOG_FETCH_HPP

#include "http_client.hpp"
#include "pagination.hpp"

#include <catalog/record.hpp>
#include <smartasync/blocking_pool.hpp>
#include <smartasync/metrics_registry.hpp>
#include <smartasync/serial_lane.hpp>
#include <smartasync/stream.hpp>

#include <asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace catalog_sync {

/// What to fetch and how politely.
struct sync_options {
  /// The collection URL, without the pagination parameters (it may carry others).
  std::string url;
  pagination_style style = pagination_style::offset;
  api_names names;
  /// Page requests in flight at once (at least 1). The HTTP pool gets this many threads.
  std::size_t concurrency = 8;
  std::size_t page_size = 100;
  std::chrono::milliseconds connect_timeout{2000};
  /// One request, connection included.
  std::chrono::milliseconds request_timeout{10000};
  /// Attempts per page, the first included.
  std::size_t max_attempts = 5;
  std::chrono::milliseconds retry_base_delay{200};
  std::chrono::milliseconds retry_max_delay{10000};
  /// A Retry-After longer than this fails the page instead of waiting.
  std::chrono::milliseconds max_retry_after{std::chrono::minutes(2)};
  /// Extra request headers ("Authorization: Bearer ...").
  std::vector<std::string> headers;
  /// Ask for gzip responses.
  bool compression = true;
  /// The largest page body accepted, counted decompressed: a larger one fails its page at once
  /// ("response body over N bytes"), without retries. Each page in flight holds at most this
  /// much body plus its parsed records, so the run's memory stays within a small multiple of
  /// concurrency x max_body_bytes whatever a server sends (a gzip bomb, an endless body).
  std::size_t max_body_bytes = http_options::default_max_body_bytes;
  /// Seed of the retry jitter; nullopt: random.
  std::optional<std::uint64_t> seed;
  /// The deletion guard: a commit that would delete more than this share of the catalogue,
  /// or every record of a non-empty one, is refused (catalog::mass_deletion) and nothing is
  /// committed. An empty or cut-short snapshot looks exactly like "everything was removed".
  double max_delete_share = 0.5;
  /// Turns the guard off: the API really did remove that much.
  bool allow_mass_delete = false;
  /// The nice value (0 to 19, Linux) of the sync's threads, which parse pages and write them.
  /// A server that also answers people (the dashboard's searches) runs its syncs above 0, so
  /// that a search never waits for the CPU behind a bulk sync; alone, a sync loses nothing.
  int thread_nice = 0;
};

/// The first page is in: what the whole run will fetch.
struct sync_started {
  std::string url;
  pagination_style style{};
  std::size_t concurrency = 0;
  /// Unknown for cursor pagination (and for APIs that do not say).
  std::optional<std::size_t> total_items;
  std::optional<std::size_t> total_pages;
  /// The page size asked for, and the one used: smaller when the first page came back short
  /// while the API announced more (a total, a next link or cursor), i.e. the server caps it.
  std::size_t requested_page_size = 0;
  std::size_t page_size = 0;
  bool page_size_capped = false;
  /// Offset or page style without a total: pages are fetched K at a time past the unknown end
  /// until one comes back empty, which proves the end (up to K-1 requests past it are wasted).
  bool until_empty_page = false;
};

/// One page fetched and staged.
struct page_done {
  /// 0-based page index.
  std::size_t page = 0;
  std::size_t items = 0;
  /// Attempts it took.
  std::size_t attempts = 1;
  std::size_t pages_done = 0;
  std::size_t items_done = 0;
  std::optional<std::size_t> total_pages;
  std::optional<std::size_t> total_items;
};

/// A page request failed and will be retried after `delay`.
struct page_retry {
  std::size_t page = 0;
  /// The attempt that failed (1-based).
  std::size_t attempt = 0;
  std::chrono::milliseconds delay{};
  /// "HTTP 429 (Retry-After: 1)", "timed out after 200 ms", ...
  std::string reason;
};

/// The run committed.
struct sync_completed {
  catalog::sync_counts counts;
  std::size_t items = 0;
  std::size_t pages = 0;
  std::size_t retries = 0;
  /// Items naming a record served earlier in the run (the last one was kept): `items` minus
  /// this is the number of distinct records. Cursor style only: with offsets or page numbers
  /// a repeated name means the pages shifted, and the run fails instead.
  std::size_t duplicates = 0;
  /// The first few duplicated names.
  std::vector<std::string> duplicate_names;
  std::chrono::milliseconds elapsed{};
  double items_per_second = 0;
};

/// The run failed or was cancelled; the catalogue is unchanged.
struct sync_failed {
  std::string message;
  bool cancelled = false;
  /// The deletion guard refused the commit (see sync_options::max_delete_share).
  bool refused = false;
};

using sync_event = std::variant<sync_started, page_done, page_retry, sync_completed, sync_failed>;

/// Receives the events, on the sync's executor; it must be quick and must not block.
using event_sink = std::function<void(const sync_event&)>;

/// A page that failed for good; what() names the page and the reason.
class sync_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// The syncer: an HTTP pool and a database pool, and the coroutine that uses them.
/**
 * Pool sizing: each page request is one blocking libcurl call occupying one worker for its
 * whole duration, and at most `concurrency` are in flight, so the pool has `concurrency`
 * threads for them (fewer would cap the real concurrency, more would idle) plus one for the
 * database. Retry delays are timers, not threads. The database calls go through a
 * smartasync::serial_lane: a catalog_db connection is for one call at a time, in order, and
 * SQLite writes are serialised anyway.
 *
 * @par Thread safety
 * One run() at a time. Run it on a single-threaded executor or a strand (sync_events() does).
 * The syncer must outlive the run.
 */
class catalog_syncer {
public:
  explicit catalog_syncer(sync_options options);
  ~catalog_syncer();
  catalog_syncer(const catalog_syncer&) = delete;
  catalog_syncer& operator=(const catalog_syncer&) = delete;

  /// Fetches every page and makes the catalogue in `db` equal to the API's, atomically.
  /**
   * The first page is fetched alone. When it tells the total (in the body, or the
   * `total_header`, in any style), the remaining pages are fetched with at most `concurrency`
   * requests in flight (smartasync::fan_out), in any order; when only a next link or cursor
   * exists, pages are followed in order, the next one being fetched while the current one is
   * written; when neither exists (offset or page style), `concurrency` pages stay in flight
   * past the unknown end until one comes back empty. A short page is never taken as the end:
   * a short first page while more is announced (or unknown) means the server caps the page
   * size, and the run continues with the size it got. Each fetched page is staged into the
   * catalogue's sync at once, so memory holds the pages in flight only.
   *
   * @returns What the commit changed.
   * @throws sync_error naming the page and the reason when a page failed for good (its body
   *         over max_body_bytes, a record over catalog::max_record_bytes, ...), when the item
   *         count disagrees with the announced total, when a page short of the page size was
   *         followed by more items, or when the collection changed during the run (a page
   *         announcing another total than the first, or, with offsets or page numbers, a name
   *         served twice); catalog::mass_deletion when the deletion guard refused the commit;
   *         std::system_error (operation_aborted) when cancelled; catalog::error for database
   *         failures. In every failure case nothing was committed.
   *
   * @par Cancellation
   * Terminal cancellation stops the requests in flight (libcurl is aborted through the
   * wrapped call's stop_token), waits for a page being staged, interrupts a commit in
   * progress (sqlite3_interrupt; it stops within one record's worth of work), rolls back. A
   * commit that completed before the interruption took effect is reported as completed.
   */
  asio::awaitable<catalog::sync_counts> run(std::filesystem::path db, event_sink on_event = {});

  const sync_options& options() const noexcept;

  /// The pool the page requests and the database calls run on: threads, running, queued,
  /// queue-wait and run-time distributions. Callable from any thread, during a run too.
  smartasync::pool_metrics pool_metrics() const;
  /// The lane that orders the database calls on that pool. Callable from any thread.
  smartasync::lane_metrics database_metrics() const;
  /// Exposes that pool as `name` and that lane as `name` + " database" in `registry` (for a
  /// Prometheus scraper); they leave it when the syncer is destroyed.
  /// @throws std::invalid_argument when either name is taken there.
  void add_metrics_to(smartasync::metrics_registry& registry, const std::string& name) const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Runs a sync and hands its events to a synchronous consumer, ending with sync_completed or
/// sync_failed.
/**
 * The sync runs on smartasync's background loop; the consumer iterates:
 * @code
 * for (const sync_event& e : catalog_sync::sync_events(syncer, "catalog.db")) show(e);
 * @endcode
 * Breaking out of the loop cancels the sync (nothing is committed). When `cancel_on_signals`
 * is set, SIGINT and SIGTERM cancel it too; the last event is then sync_failed with
 * cancelled = true.
 */
std::unique_ptr<smartasync::sync_stream<sync_event>>
sync_events(catalog_syncer& syncer, std::filesystem::path db, bool cancel_on_signals = false);

} // namespace catalog_sync

#endif // CATALOG_SYNC_CATALOG_FETCH_HPP
