// catalog_sync/paginated_server.hpp - a local paginated catalogue API with fault injection.
// Distributed under the Boost Software License, Version 1.0.
//
// A real HTTP server (cpp-httplib) on loopback, serving the catalogue three ways:
//   GET /offset/packages?offset=O&limit=L   -> {"total": N, "offset": O, "limit": L, "items": [...]}
//                                              (or a bare [...], see server_options::bare_offset_pages)
//   GET /page/packages?page=P&per_page=S    -> [...], X-Total-Count, Link rel="next"/"last"/...
//   GET /cursor/packages?cursor=C&limit=L   -> {"items": [...], "next": "C2" | null}
//   GET /health                             -> {"ok": true}
// Every collection also takes `section=S`: only the records of that section (none for an
// unknown one, answered like any empty collection: `[]`, total 0).
// with knobs for latency, a token-bucket rate limit, and seeded fault injection, so that the
// client's timeouts, retries and failure paths can be exercised reproducibly.
#ifndef CATALOG_SYNC_PAGINATED_SERVER_HPP
#define CATALOG_SYNC_PAGINATED_SERVER_HPP

#include "pagination.hpp"

#include <catalog/record.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace catalog_sync {

/// What the server does to one request instead of answering it normally.
enum class fault {
  none,
  /// 429 Too Many Requests with Retry-After.
  rate_limited,
  /// 500, 502 or 503.
  server_error,
  /// Announces the full Content-Length, sends half the body and closes the connection.
  truncated,
  /// 200 with a body that is not valid JSON (the first half of the real one).
  malformed,
  /// Answers normally, but only after server_options::slow_delay (longer than a client timeout).
  slow,
  /// 400 Bad Request: a permanent error a client must not retry.
  bad_request,
  /// 200 with `Content-Encoding: gzip`: a small body that inflates to
  /// server_options::gzip_bomb_bytes of zeros.
  gzip_bomb,
  /// 200 with a chunked body that never ends (until the client hangs up or the server stops).
  endless,
};

std::string_view to_string(fault f) noexcept;
std::optional<fault> parse_fault(std::string_view s) noexcept;

/// A fault forced on one page: its first `times` requests (0: every request).
struct scripted_fault {
  fault kind = fault::none;
  std::size_t times = 0;
};

/// Construction parameters of paginated_server.
struct server_options {
  std::string host = "127.0.0.1";
  /// 0: any free port (see paginated_server::port()).
  int port = 0;
  /// Handler threads. A keep-alive connection holds one while it is open, so this must exceed
  /// the number of client connections (the client's concurrency).
  std::size_t threads = 96;
  /// Larger limit / per_page requests are served this many items (as real APIs cap silently).
  std::size_t max_page_size = 1000;
  /// Offset style answers with a bare JSON array, no total in the body (as many APIs do).
  bool bare_offset_pages = false;
  /// Offset style also sends the total in an X-Total-Count header.
  bool offset_total_header = false;
  /// Added to every announced total (body and X-Total-Count): a server whose count is wrong.
  long total_skew = 0;
  /// Once the first page request has been answered, this many new records are inserted at
  /// the front of the collection (0: never): a source that changes during a client's run, so
  /// that every later offset or page number points elsewhere. Announced totals follow.
  std::size_t shift_after_first_page = 0;
  /// Added to every page response; plus a uniform [0, jitter] drawn from the seed.
  std::chrono::milliseconds latency{0};
  std::chrono::milliseconds jitter{0};
  /// Probability, per request, of each injected fault (decided by a hash of seed, page and
  /// the page's request number: the same requests fail on every run, in any order).
  double rate_429 = 0, rate_5xx = 0, rate_truncated = 0, rate_malformed = 0, rate_slow = 0;
  /// What a `gzip_bomb` response inflates to (it is about a thousandth of that on the wire).
  std::size_t gzip_bomb_bytes = std::size_t{256} << 20;
  /// How long a `slow` response takes.
  std::chrono::milliseconds slow_delay{3000};
  /// Retry-After of injected 429 responses, in seconds.
  int retry_after_seconds = 1;
  /// A real rate limit: at most this many page requests per second (token bucket with a
  /// burst of one second's worth), answering 429 + Retry-After beyond it. 0: unlimited.
  /// Unlike the injected faults it depends on timing, so tests do not use it.
  double rate_limit = 0;
  std::uint64_t seed = 1;
  /// Faults forced on given pages (0-based page index: offset / limit, page - 1).
  std::map<std::size_t, scripted_fault> script;
  /// The nice value (0 to 19, Linux) of the threads that answer page requests. A server in the
  /// same process as its client stands for a remote machine, whose CPU would not be the
  /// client's: the dashboard's demo sources run at 19.
  int thread_nice = 0;
};

/// What the server has seen since start (or reset_stats()).
struct server_stats {
  std::size_t requests = 0;
  /// The most page requests being handled at the same moment.
  std::size_t max_in_flight = 0;
  std::size_t ok = 0;
  std::size_t rate_limited = 0;
  std::size_t server_errors = 0;
  std::size_t truncated = 0;
  std::size_t malformed = 0;
  std::size_t slow = 0;
  std::size_t bad_requests = 0;
  std::size_t gzip_bombs = 0;
  std::size_t endless = 0;
};

/// The server; it listens from construction until destruction.
/**
 * @par Thread safety
 * All member functions may be called from any thread while requests are being served.
 */
class paginated_server {
public:
  /// Binds, starts the handler threads and returns once the server accepts connections.
  /// @throws std::runtime_error when the address cannot be bound.
  paginated_server(std::vector<catalog::catalog_record> catalogue, server_options options);
  ~paginated_server();
  paginated_server(const paginated_server&) = delete;
  paginated_server& operator=(const paginated_server&) = delete;

  int port() const noexcept;
  /// "http://127.0.0.1:PORT"
  std::string base_url() const;
  /// The collection URL of one convention ("http://127.0.0.1:PORT/offset/packages").
  std::string url(pagination_style style) const;

  /// Replaces what is served (requests in progress finish with the old catalogue).
  void set_catalogue(std::vector<catalog::catalog_record> catalogue);
  /// Serves `items` (a JSON array) verbatim: records with nulls, numbers, wrong types, or
  /// duplicate names, as third-party APIs send them.
  void set_items(nlohmann::json items);
  /// Replaces the fault script (per-page request counts restart from zero).
  void set_script(std::map<std::size_t, scripted_fault> script);

  server_stats stats() const;
  void reset_stats();

  /// Stops accepting, wakes sleeping handlers and joins; the destructor calls it.
  void stop();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// A deterministic edit of a catalogue, for showing a sync's diff: drops every 20th record,
/// changes the version of every 10th remaining one, and appends `added` new records.
/// The counts a sync from the original to the result reports are in the returned pair.
std::pair<std::vector<catalog::catalog_record>, catalog::sync_counts>
edit_catalogue(std::vector<catalog::catalog_record> catalogue, std::size_t added = 25);

/// The opaque cursor the server hands out for the item at `offset`.
std::string encode_cursor(std::size_t offset);
/// The offset behind a cursor, or nullopt when it is not one of ours.
std::optional<std::size_t> decode_cursor(std::string_view cursor);

} // namespace catalog_sync

#endif // CATALOG_SYNC_PAGINATED_SERVER_HPP
