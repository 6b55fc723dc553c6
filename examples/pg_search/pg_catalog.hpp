// pg_catalog.hpp - the package catalogue on PostgreSQL through libpq: connections that notice
// a lost server, queries that a std::stop_token interrupts on the server, schema, import and
// full-text search. Plain blocking code: it knows std::stop_token, not smartasync.
// Distributed under the Boost Software License, Version 1.0.
#ifndef PG_SEARCH_PG_CATALOG_HPP
#define PG_SEARCH_PG_CATALOG_HPP

#include "catalog/errors.hpp"
#include "catalog/record.hpp"

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct pg_conn;
struct pg_result;

namespace pg_search {

/// PostgreSQL answered with an error; sqlstate() names it ("42P01": no such table, ...).
class pg_error : public catalog::error {
public:
  pg_error(std::string sqlstate, const std::string& what) : error(what), sqlstate_(std::move(sqlstate)) {}
  const std::string& sqlstate() const noexcept { return sqlstate_; }

private:
  std::string sqlstate_;
};

/// What an error's SQLSTATE says about the request that met it.
enum class error_kind {
  /// The server cannot serve anyone right now, and likely can shortly: it is shutting down,
  /// starting up or restarting (57P01-57P03), out of connection slots (53300), or the
  /// connection failed (class 08). Retry later (HTTP 503 with Retry-After).
  unavailable,
  /// The server rejected a value the statement was given: a data exception (class 22, e.g.
  /// 22023 for a phrase distance over 16384 in a tsquery), a syntax error in text it parses
  /// (42601), or a limit the value exceeds (class 54). In a search that value is the user's
  /// query (HTTP 400).
  bad_input,
  /// Anything else, "" included: a fault of the program or of the database (HTTP 500).
  other,
};

/// Classifies a five-character SQLSTATE ("57P03", "53300", "22023", ...).
error_kind classify_sqlstate(std::string_view sqlstate) noexcept;

/// The query was interrupted on the server because its std::stop_token was stopped. A
/// smartasync caller never sees it (a cancelled call completes with operation_aborted).
class query_cancelled : public catalog::error {
public:
  using error::error;
};

/// How to reach the server.
struct connection_options {
  /// A libpq connection string ("host=127.0.0.1 port=5432 dbname=catalog") or URI.
  std::string conninfo;
  /// Gives up connecting after this long (libpq's connect_timeout), unless conninfo says
  /// otherwise: a server that does not answer is an error, not a hang.
  std::chrono::seconds connect_timeout{5};
  /// Shown in pg_stat_activity.application_name, unless conninfo says otherwise.
  std::string application_name = "pg_search";
  /// After a failed connection attempt, calls fail at once (catalog::unavailable) for this
  /// long, doubling up to max_backoff while the server stays away; a success resets it.
  std::chrono::milliseconds first_backoff{100};
  std::chrono::milliseconds max_backoff{5000};
};

/// The rows of a query, owned.
class result {
public:
  explicit result(pg_result* r) noexcept : r_(r) {}
  int rows() const noexcept;
  /// The text of a field ("" for NULL).
  std::string_view text(int row, int column) const noexcept;
  double number(int row, int column) const;

private:
  struct deleter {
    void operator()(pg_result* r) const noexcept;
  };
  std::unique_ptr<pg_result, deleter> r_;
};

/// One libpq connection: blocking, for one thread at a time (it may move between threads).
class connection {
public:
  /// Connects. @throws catalog::unavailable when the server cannot be reached (refused,
  /// unknown host, connect_timeout passed) or turns the connection away for now (shutting
  /// down, starting up, too many clients: see classify_sqlstate), pg_error for what the
  /// server refuses for good (no such database, authentication).
  explicit connection(const connection_options& options);
  connection(connection&&) noexcept;
  connection& operator=(connection&&) noexcept;
  ~connection();

  /// False once the connection is known, or likely, to be broken. Checked without a round
  /// trip: a server that closed it (restart, terminated backend) has left its goodbye on the
  /// socket, and an idle connection has nothing else to read.
  bool usable() noexcept;

  /// Runs `sql` with text parameters $1, $2, ... and returns its rows.
  /**
   * When `stop` is stopped while the query runs, the query is cancelled on the server
   * (PQcancel, from the stopping thread, through a std::stop_callback) and this throws
   * query_cancelled as soon as the server has stopped it.
   *
   * @throws query_cancelled as above, catalog::unavailable when the connection is lost (the
   *         connection is then unusable) or the server reports an error_kind::unavailable
   *         SQLSTATE (an administrator's shutdown ends the query before the connection),
   *         pg_error for another error the server reports.
   */
  result exec(std::string_view sql, std::span<const std::string> params = {}, std::stop_token stop = {});

  /// Sends `rows` (COPY text format, one line each) to `COPY ... FROM STDIN` `copy_sql`.
  void copy_in(std::string_view copy_sql, std::string_view rows);

  /// The server process serving this connection (pg_stat_activity.pid).
  int backend_pid() const noexcept;

private:
  pg_conn* conn_ = nullptr;
};

/// One connection per pool thread, opened on first use and checked on every use.
/**
 * acquire() lends a connection for one call. A connection found broken (the server restarted
 * while it was idle) is replaced before the call uses it; one that breaks during a call fails
 * that call (catalog::unavailable) and is replaced for the next. While the server stays
 * unreachable, calls fail at once with the last connection error, and a new attempt is made
 * only after a backoff (connection_options::first_backoff, doubling to max_backoff), so a
 * down server is not hammered by every request.
 *
 * @par Thread safety
 * acquire() may be called from any thread. Size it to the blocking pool's threads so no
 * worker waits for a connection.
 */
class connection_pool {
public:
  connection_pool(connection_options options, std::size_t size);
  connection_pool(const connection_pool&) = delete;
  connection_pool& operator=(const connection_pool&) = delete;

  class lease {
  public:
    lease(lease&& other) noexcept : pool_(std::exchange(other.pool_, nullptr)), slot_(other.slot_) {}
    lease& operator=(lease&&) = delete;
    ~lease();
    connection& operator*() const noexcept { return *pool_->slots_[slot_]; }
    connection* operator->() const noexcept { return &**this; }

  private:
    friend class connection_pool;
    lease(connection_pool* p, std::size_t s) noexcept : pool_(p), slot_(s) {}
    connection_pool* pool_;
    std::size_t slot_;
  };

  /// A connected, checked connection for one call; waits while all are lent.
  /// @throws catalog::unavailable when the server cannot be reached (or was not, moments ago).
  lease acquire();

  /// Connections opened so far (a reconnect counts): tells a test that one happened.
  std::uint64_t connects() const;
  const connection_options& options() const noexcept { return options_; }

private:
  void connect_slot(std::size_t slot);

  const connection_options options_;
  mutable std::mutex mutex_;
  std::condition_variable freed_;
  std::vector<std::optional<connection>> slots_;
  std::vector<bool> lent_;
  std::uint64_t connects_ = 0;
  // The reconnect backoff, shared: the server is down for every slot at once.
  std::chrono::steady_clock::time_point retry_at_{};
  std::chrono::milliseconds backoff_{0};
  std::string last_error_;
};

/// Largest `limit` search accepts, and the longest query, as in the SQLite catalogue.
inline constexpr int max_limit = 1000;
inline constexpr std::size_t max_query_bytes = 1024;

/// Creates the table and its full-text index when missing.
void create_schema(connection& db);

/// Replaces the whole catalogue with `records` in one transaction (readers see the old one
/// until it commits). A name given twice: the last record wins. Returns how many are stored.
/// @throws catalog::invalid_record for an empty name (nothing changes).
std::size_t import_records(connection& db, std::span<const catalog::catalog_record> records);

/// How many records the catalogue holds.
std::size_t count_records(connection& db);

/// The best `limit` matches of the tsquery `query`, best first, with highlighted snippets.
/**
 * `query` is PostgreSQL's to_tsquery syntax over the English configuration: `word`,
 * `a & b`, `a | b`, `!a`, `a <-> b` (followed by), `pre:*` (prefix), parentheses. Ranking is
 * ts_rank with a name match weighing 10 times a description match (higher is better); ties
 * are broken by name. `server_delay` makes the server sleep that long first (pg_sleep in the
 * same statement), for demonstrations and tests of cancellation.
 *
 * @throws catalog::invalid_query for a blank, overlong or ill-formed query (PostgreSQL's
 *         message: any error_kind::bad_input, such as `lib <99999> net`, a phrase distance
 *         over PostgreSQL's 16384), catalog::invalid_limit outside [1, max_limit], and what exec throws.
 */
std::vector<catalog::search_hit> search(connection& db, std::string_view query, int limit, std::stop_token stop = {},
                                        std::chrono::milliseconds server_delay = {});

} // namespace pg_search

#endif // PG_SEARCH_PG_CATALOG_HPP
