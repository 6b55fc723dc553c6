// pg_catalog.cpp - libpq connections, interruptible queries, and the catalogue on PostgreSQL.
// Distributed under the Boost Software License, Version 1.0.
#include "pg_catalog.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <functional>
#include <future>
#include <unordered_map>
#include <utility>

namespace pg_search {

namespace {

using clock = std::chrono::steady_clock;

// libpq's messages end with a newline; ours are one line.
std::string trimmed(const char* message) {
  std::string s = message ? message : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
    s.pop_back();
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s;
}

// The server's own message ("syntax error in tsquery: ..."), without libpq's "ERROR:  ".
std::string message_of(const PGresult* r, PGconn* conn) {
  if (const char* primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : nullptr)
    return primary;
  return trimmed(r ? PQresultErrorMessage(r) : PQerrorMessage(conn));
}

std::string sqlstate_of(const PGresult* r) {
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  return state ? state : "";
}

// libpq reports a failed connection as text only, no PGresult: with PQERRORS_VERBOSE each
// server message in it reads "SEVERITY:  SQLSTATE: message" followed by a "LOCATION:" line.
// Takes the SQLSTATEs out (the severity word may be translated, the layout is not) and leaves
// the message as the default verbosity would have written it.
struct connect_failure {
  std::string message;
  std::vector<std::string> sqlstates; // one per server that answered, in order
};

bool sqlstate_char(char c) noexcept { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z'); }

connect_failure parse_connect_failure(std::string_view verbose) {
  connect_failure out;
  std::string kept;
  while (!verbose.empty()) {
    const auto eol = verbose.find('\n');
    std::string_view line = verbose.substr(0, eol);
    verbose = eol == std::string_view::npos ? std::string_view() : verbose.substr(eol + 1);
    if (line.starts_with("LOCATION:"))
      continue;
    std::string text(line);
    for (std::size_t at = text.find(":  "); at != std::string::npos; at = text.find(":  ", at + 1)) {
      const std::size_t code = at + 3;
      if (code + 7 <= text.size() && std::all_of(text.begin() + static_cast<std::ptrdiff_t>(code),
                                                 text.begin() + static_cast<std::ptrdiff_t>(code + 5), sqlstate_char) &&
          text.compare(code + 5, 2, ": ") == 0) {
        out.sqlstates.push_back(text.substr(code, 5));
        text.erase(code, 7);
      }
    }
    kept += text;
    kept += '\n';
  }
  out.message = trimmed(kept.c_str());
  return out;
}

// Sends one cancel request: PQcancel is thread-safe (it may even be called from a signal
// handler) and does not throw; it opens a short connection to the server, which signals the
// backend running this connection's query. On failure the query runs on, and the worker's
// wait loop below sends the request again.
void send_cancel(PGcancel* cancel) noexcept {
  std::array<char, 256> error{};
  (void)PQcancel(cancel, error.data(), static_cast<int>(error.size()));
}

// The interrupter: run by std::stop_callback on the thread that requests the stop (a timer's
// handler on an event loop, a shutdown), while the worker is blocked in the query. It must be
// quick: PQcancel takes a connection round trip and a process the server forks (1-30 ms on
// this machine), too long for an event loop, so it runs on a thread of its own, and the worker
// waits for that thread before it returns (PQcancel must have returned before the connection's
// next query, see the stale cancel below).
struct interrupter {
  PGcancel* cancel;
  std::future<void>* sending; // read by the worker only after the stop_callback is destroyed
  void operator()() const noexcept {
    try {
      *sending = std::async(std::launch::async, [c = cancel] { send_cancel(c); });
    } catch (...) { // no thread to be had: send it from here rather than not at all
      send_cancel(cancel);
    }
  }
};

// How often the worker repeats a cancel request while its stopped query still runs: the
// interrupter's first request can reach the server before the query does (and be ignored),
// or fail to connect.
constexpr auto cancel_repeat = std::chrono::milliseconds(100);

} // namespace

int result::rows() const noexcept { return PQntuples(r_.get()); }
std::string_view result::text(int row, int column) const noexcept {
  return {PQgetvalue(r_.get(), row, column), static_cast<std::size_t>(PQgetlength(r_.get(), row, column))};
}
double result::number(int row, int column) const {
  const auto t = text(row, column);
  double value = 0;
  const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), value);
  if (ec != std::errc() || end != t.data() + t.size())
    throw catalog::error(fmt::format("expected a number from PostgreSQL, got '{}'", t));
  return value;
}
void result::deleter::operator()(pg_result* r) const noexcept { PQclear(r); }

error_kind classify_sqlstate(std::string_view sqlstate) noexcept {
  if (sqlstate.size() != 5)
    return error_kind::other;
  const std::string_view cls = sqlstate.substr(0, 2);
  if (sqlstate == "57P01" || sqlstate == "57P02" || sqlstate == "57P03" || sqlstate == "53300" || cls == "08")
    return error_kind::unavailable;
  if (cls == "22" || sqlstate == "42601" || cls == "54")
    return error_kind::bad_input;
  return error_kind::other;
}

connection::connection(const connection_options& options) {
  // Our defaults first: expand_dbname parses conninfo in place of "dbname", and later entries
  // override earlier ones, so whatever conninfo says wins.
  const std::string timeout = std::to_string(options.connect_timeout.count());
  const char* keys[] = {"connect_timeout", "application_name", "dbname", nullptr};
  const char* values[] = {timeout.c_str(), options.application_name.c_str(), options.conninfo.c_str(), nullptr};
  // Connecting step by step rather than with PQconnectdbParams, for one setting made before the
  // server answers: verbose errors, the only way libpq tells the SQLSTATE of a refusal.
  conn_ = PQconnectStartParams(keys, values, 1);
  if (!conn_)
    throw catalog::unavailable("cannot connect to PostgreSQL: out of memory");
  PQsetErrorVerbosity(conn_, PQERRORS_VERBOSE);
  // NOTICEs (CREATE ... IF NOT EXISTS "already exists, skipping") would go to stderr.
  PQsetNoticeProcessor(conn_, [](void*, const char*) {}, nullptr);

  // PQconnectPoll leaves connect_timeout to its caller. The effective value (conninfo may set
  // it) bounds the whole attempt; as in libpq, under 2 s means 2 s, and 0 or less, no bound.
  std::optional<clock::time_point> give_up;
  if (PQconninfoOption* effective = PQconninfo(conn_)) {
    for (auto* o = effective; o->keyword; ++o)
      if (std::strcmp(o->keyword, "connect_timeout") == 0 && o->val) {
        int seconds = 0;
        const std::string_view v(o->val);
        if (std::from_chars(v.data(), v.data() + v.size(), seconds).ec == std::errc() && seconds > 0)
          give_up = clock::now() + std::chrono::seconds(std::max(seconds, 2));
      }
    PQconninfoFree(effective);
  }
  bool timed_out = false;
  auto state = PGRES_POLLING_WRITING; // libpq: start as if PQconnectPoll had said so
  while (PQstatus(conn_) != CONNECTION_BAD && state != PGRES_POLLING_OK && state != PGRES_POLLING_FAILED) {
    int wait_ms = -1;
    if (give_up) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(*give_up - clock::now()).count();
      if (left <= 0) {
        timed_out = true;
        break;
      }
      wait_ms = static_cast<int>(std::min<long long>(left, 1000 * 3600));
    }
    // The socket may change between calls (the next address of a host, the next host).
    pollfd p{PQsocket(conn_), static_cast<short>(state == PGRES_POLLING_READING ? POLLIN : POLLOUT), 0};
    const int ready = p.fd < 0 ? 1 : ::poll(&p, 1, wait_ms); // no socket: let libpq say why
    if (ready < 0 && errno != EINTR) {
      const std::string reason = std::strerror(errno);
      PQfinish(conn_);
      conn_ = nullptr;
      throw catalog::unavailable("cannot connect to PostgreSQL: waiting for the server failed: " + reason);
    }
    if (ready > 0)
      state = PQconnectPoll(conn_);
  }

  if (timed_out || PQstatus(conn_) != CONNECTION_OK) {
    const char* host = PQhost(conn_);
    const char* port = PQport(conn_);
    const auto failure = parse_connect_failure(
        timed_out ? fmt::format("connection to server at \"{}\", port {} failed: timeout expired", host ? host : "",
                                port ? port : "")
                  : std::string(PQerrorMessage(conn_)));
    PQfinish(conn_);
    conn_ = nullptr;
    // A refusal that will not mend by retrying (no such database, bad password) is an error;
    // a server that did not answer, or turned us away for now (shutting down, starting up,
    // too many clients: 57P03, 53300, ...), is unavailable. Servers too old to send a
    // SQLSTATE only say FATAL.
    const bool transient =
        failure.sqlstates.empty()
            ? failure.message.find("FATAL") == std::string::npos
            : std::any_of(failure.sqlstates.begin(), failure.sqlstates.end(),
                          [](const std::string& s) { return classify_sqlstate(s) == error_kind::unavailable; });
    if (!transient)
      throw pg_error(failure.sqlstates.empty() ? "" : failure.sqlstates.back(),
                     "PostgreSQL refused the connection: " + failure.message);
    throw catalog::unavailable("cannot connect to PostgreSQL: " + failure.message);
  }
  PQsetErrorVerbosity(conn_, PQERRORS_DEFAULT); // query errors are read field by field
}

connection::connection(connection&& other) noexcept : conn_(std::exchange(other.conn_, nullptr)) {}
connection& connection::operator=(connection&& other) noexcept {
  if (this != &other) {
    if (conn_)
      PQfinish(conn_);
    conn_ = std::exchange(other.conn_, nullptr);
  }
  return *this;
}
connection::~connection() {
  if (conn_)
    PQfinish(conn_);
}

int connection::backend_pid() const noexcept { return PQbackendPID(conn_); }

bool connection::usable() noexcept {
  if (!conn_ || PQstatus(conn_) != CONNECTION_OK)
    return false;
  // Idle, nothing should arrive: something readable is almost always the server's goodbye (a
  // FATAL "terminating connection" and EOF, after a restart or pg_terminate_backend), and
  // libpq keeps CONNECTION_OK until a query trips on it. So readable means replace it; the
  // rare harmless message (a NOTIFY we never LISTEN for, a setting reported after a reload)
  // costs one reconnect.
  pollfd p{PQsocket(conn_), POLLIN, 0};
  return ::poll(&p, 1, 0) == 0;
}

result connection::exec(std::string_view sql_text, std::span<const std::string> params, std::stop_token stop) {
  const std::string sql(sql_text);
  std::vector<const char*> values;
  for (const auto& p : params)
    values.push_back(p.c_str());

  // Made before the query is sent, on this thread (PQgetCancel reads the connection); the
  // PGcancel itself is independent of the connection and usable from any thread. Declared
  // before the stop_callback so that it outlives it: the callback's destructor waits for a
  // run of the interrupter that is in progress on another thread.
  const std::unique_ptr<PGcancel, decltype(&PQfreeCancel)> cancel(PQgetCancel(conn_), &PQfreeCancel);
  std::future<void> sending; // the interrupter's request, in flight on its own thread
  bool cancel_sent = false;  // by this thread (a repeat)
  // Stopped already: nothing to interrupt (checked first, so no cancel request is sent for
  // nothing). A stop from now on is the interrupter's, and is handled after the query.
  if (stop.stop_requested())
    throw query_cancelled("query cancelled before it was sent");
  std::optional<std::stop_callback<interrupter>> on_stop;
  if (cancel && stop.stop_possible())
    on_stop.emplace(stop, interrupter{cancel.get(), &sending});

  if (!PQsendQueryParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr,
                         nullptr, 0)) {
    const std::string message = trimmed(PQerrorMessage(conn_));
    if (PQstatus(conn_) != CONNECTION_OK)
      throw catalog::unavailable("connection to PostgreSQL lost: " + message);
    throw pg_error("", message);
  }

  // Wait for the answer on the socket, in slices, so that a stopped query whose first cancel
  // request went unheeded gets another one.
  // Short slices even before a stop: a stop whose first request went unheeded is noticed
  // within one of them.
  std::optional<clock::time_point> last_cancel; // set when this thread first sees the stop
  while (PQisBusy(conn_)) {
    pollfd p{PQsocket(conn_), POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(cancel_repeat.count()));
    if (ready < 0 && errno != EINTR)
      throw catalog::unavailable(fmt::format("waiting for PostgreSQL failed: {}", std::strerror(errno)));
    if (ready > 0 && PQconsumeInput(conn_) == 0)
      break; // the connection failed: PQgetResult reports it below
    if (!stop.stop_requested() || !cancel)
      continue;
    if (!last_cancel) {
      last_cancel = clock::now(); // the interrupter has just sent one
    } else if (clock::now() - *last_cancel >= cancel_repeat) {
      send_cancel(cancel.get());
      cancel_sent = true;
      last_cancel = clock::now();
    }
  }

  // Collect every result (libpq requires it); keep the first error or the last rows.
  PGresult* kept = nullptr;
  while (PGresult* r = PQgetResult(conn_)) {
    const auto status = PQresultStatus(r);
    const bool error = status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE;
    if (!kept || (error && PQresultStatus(kept) != PGRES_FATAL_ERROR && PQresultStatus(kept) != PGRES_BAD_RESPONSE)) {
      if (kept)
        PQclear(kept);
      kept = r;
    } else {
      PQclear(r);
    }
    if (PQstatus(conn_) != CONNECTION_OK)
      break;
  }
  result rows(kept);
  on_stop.reset(); // no interrupter past this point (waits for one running on another thread)
  if (sending.valid()) {
    sending.wait();
    cancel_sent = true;
  }
  if (cancel_sent && PQstatus(conn_) == CONNECTION_OK) {
    // A cancel request that reached the backend as its query was ending leaves the cancel
    // pending there, and it would hit this connection's next query (seen: a back-to-back
    // query failed with "canceling statement due to user request"). PQcancel returned after
    // the server signalled the backend, so a throwaway statement now takes that hit, if any.
    PQclear(PQexec(conn_, "SELECT 1"));
  }

  if (PQstatus(conn_) != CONNECTION_OK)
    throw catalog::unavailable("connection to PostgreSQL lost during the query: " +
                               trimmed(kept ? PQresultErrorMessage(kept) : PQerrorMessage(conn_)) +
                               " (the next call reconnects)");
  if (!kept)
    throw pg_error("", "PostgreSQL returned no result: " + trimmed(PQerrorMessage(conn_)));
  const auto status = PQresultStatus(kept);
  if (status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE) {
    const std::string state = sqlstate_of(kept);
    if (state == "57014" && stop.stop_requested())
      throw query_cancelled("query cancelled on the server at the caller's request");
    // A fast shutdown's "terminating connection due to administrator command" (57P01) can be
    // read before the connection's end is: the connection is as good as lost.
    if (classify_sqlstate(state) == error_kind::unavailable)
      throw catalog::unavailable("connection to PostgreSQL lost during the query: " + message_of(kept, conn_) +
                                 " (the next call reconnects)");
    throw pg_error(state, message_of(kept, conn_));
  }
  return rows;
}

void connection::copy_in(std::string_view copy_sql, std::string_view rows) {
  const std::string sql(copy_sql);
  PGresult* start = PQexec(conn_, sql.c_str());
  if (PQresultStatus(start) != PGRES_COPY_IN) {
    const std::string state = sqlstate_of(start), message = message_of(start, conn_);
    PQclear(start);
    if (PQstatus(conn_) != CONNECTION_OK)
      throw catalog::unavailable("connection to PostgreSQL lost: " + message);
    throw pg_error(state, message);
  }
  PQclear(start);
  // The server waits for the rows now.
  if (PQputCopyData(conn_, rows.data(), static_cast<int>(rows.size())) != 1 || PQputCopyEnd(conn_, nullptr) != 1)
    throw catalog::unavailable("sending the catalogue to PostgreSQL failed: " + trimmed(PQerrorMessage(conn_)));
  PGresult* kept = nullptr;
  while (PGresult* r = PQgetResult(conn_)) {
    if (!kept && PQresultStatus(r) != PGRES_COMMAND_OK)
      kept = r;
    else
      PQclear(r);
  }
  if (kept) {
    const result error(kept);
    throw pg_error(sqlstate_of(kept), message_of(kept, conn_));
  }
}

connection_pool::connection_pool(connection_options options, std::size_t size)
    : options_(std::move(options)), slots_(size), lent_(size, false) {
  if (size == 0)
    throw std::invalid_argument("connection_pool: size must be at least 1");
}

connection_pool::lease::~lease() {
  if (!pool_)
    return;
  {
    std::lock_guard lock(pool_->mutex_);
    pool_->lent_[slot_] = false;
  }
  pool_->freed_.notify_one();
}

connection_pool::lease connection_pool::acquire() {
  std::size_t slot = 0;
  {
    std::unique_lock lock(mutex_);
    freed_.wait(lock, [&] { return std::find(lent_.begin(), lent_.end(), false) != lent_.end(); });
    slot = static_cast<std::size_t>(std::find(lent_.begin(), lent_.end(), false) - lent_.begin());
    lent_[slot] = true;
  }
  lease held(this, slot); // returned to the pool on any exit, exceptions included
  if (!slots_[slot] || !slots_[slot]->usable())
    connect_slot(slot);
  return held;
}

void connection_pool::connect_slot(std::size_t slot) {
  slots_[slot].reset(); // a broken connection is closed before a new one is tried
  {
    std::lock_guard lock(mutex_);
    const auto now = clock::now();
    if (now < retry_at_)
      throw catalog::unavailable(fmt::format(
          "{}; next attempt in {} ms", last_error_,
          std::chrono::ceil<std::chrono::milliseconds>(retry_at_ - now).count()));
  }
  try {
    slots_[slot].emplace(options_);
  } catch (const catalog::unavailable& e) {
    std::lock_guard lock(mutex_);
    backoff_ = backoff_.count() == 0 ? options_.first_backoff : std::min(backoff_ * 2, options_.max_backoff);
    retry_at_ = clock::now() + backoff_;
    last_error_ = e.what();
    throw;
  }
  std::lock_guard lock(mutex_);
  ++connects_;
  backoff_ = std::chrono::milliseconds(0);
  retry_at_ = {};
}

std::uint64_t connection_pool::connects() const {
  std::lock_guard lock(mutex_);
  return connects_;
}

// ---------------------------------------------------------------------------------------
// The catalogue.

void create_schema(connection& db) {
  // The document is computed by the server from the row: name weighted A, description B, so
  // ts_rank can weigh a name match apart. The GIN index serves @@.
  db.exec(R"sql(
    CREATE TABLE IF NOT EXISTS packages (
      name        text PRIMARY KEY,
      version     text NOT NULL,
      section     text NOT NULL,
      maintainer  text NOT NULL,
      description text NOT NULL,
      document    tsvector GENERATED ALWAYS AS (
                    setweight(to_tsvector('english', name), 'A') ||
                    setweight(to_tsvector('english', description), 'B')) STORED
    ))sql");
  // One statement per exec: the extended query protocol takes no more.
  db.exec("CREATE INDEX IF NOT EXISTS packages_document ON packages USING gin (document)");
}

namespace {
// COPY's text format: tab-separated columns, one row per line, backslash escapes.
void append_copy_field(std::string& out, std::string_view field) {
  for (const char c : field) {
    switch (c) {
    case '\\': out += "\\\\"; break;
    case '\t': out += "\\t"; break;
    case '\n': out += "\\n"; break;
    case '\r': out += "\\r"; break;
    default: out += c;
    }
  }
}
} // namespace

std::size_t import_records(connection& db, std::span<const catalog::catalog_record> records) {
  // The last record of a name wins, as in the SQLite catalogue's sync.
  std::unordered_map<std::string_view, std::size_t> last;
  for (std::size_t i = 0; i < records.size(); ++i) {
    if (records[i].name.empty())
      throw catalog::invalid_record(fmt::format("record {} has an empty name; nothing was imported", i));
    if (records[i].name.find('\0') != std::string::npos || records[i].description.find('\0') != std::string::npos)
      throw catalog::invalid_record(fmt::format("record '{}' contains a NUL byte; nothing was imported",
                                                records[i].name));
    last[records[i].name] = i;
  }
  std::string rows;
  for (std::size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    if (last[r.name] != i)
      continue;
    append_copy_field(rows, r.name), rows += '\t';
    append_copy_field(rows, r.version), rows += '\t';
    append_copy_field(rows, r.section), rows += '\t';
    append_copy_field(rows, r.maintainer), rows += '\t';
    append_copy_field(rows, r.description), rows += '\n';
  }
  create_schema(db);
  db.exec("BEGIN");
  try {
    // DELETE rather than TRUNCATE: searches keep reading the previous snapshot meanwhile.
    db.exec("DELETE FROM packages");
    db.copy_in("COPY packages (name, version, section, maintainer, description) FROM STDIN", rows);
    db.exec("COMMIT");
  } catch (...) {
    try {
      db.exec("ROLLBACK");
    } catch (...) { // the connection is gone: the server rolled back already
    }
    throw;
  }
  db.exec("ANALYZE packages");
  return last.size();
}

std::size_t count_records(connection& db) {
  const auto r = db.exec("SELECT count(*) FROM packages");
  return static_cast<std::size_t>(r.number(0, 0));
}

std::vector<catalog::search_hit> search(connection& db, std::string_view query, int limit, std::stop_token stop,
                                        std::chrono::milliseconds server_delay) {
  if (query.find_first_not_of(" \t\r\n") == std::string_view::npos)
    throw catalog::invalid_query("invalid search query: empty");
  if (query.size() > max_query_bytes)
    throw catalog::invalid_query(fmt::format("invalid search query: longer than {} bytes", max_query_bytes));
  if (query.find('\0') != std::string_view::npos)
    throw catalog::invalid_query("invalid search query: contains a NUL byte");
  if (limit < 1 || limit > max_limit)
    throw catalog::invalid_limit(fmt::format("invalid limit {}: must be within [1, {}]", limit, max_limit));

  // ts_rank over the top rows only, then ts_headline (costly: it re-parses the text) over the
  // `limit` rows kept. Weights are {D, C, B, A}: a name (A) match weighs 10 descriptions (B).
  // The text's own `\`, `[` and `]` are escaped before the headline adds its `[` `]` (the
  // parser reads all three as separators, so the words and their matches do not change).
  static constexpr std::string_view select = R"sql(
    SELECT name, version, section,
           ts_headline('english', replace(replace(replace(description, '\', '\\'), '[', '\['), ']', '\]'), query,
                       'StartSel="[", StopSel="]", MaxWords=24, MinWords=10, MaxFragments=2, FragmentDelimiter=" ... "'),
           rank
    FROM (SELECT p.name, p.version, p.section, p.description, q.query,
                 ts_rank('{0.1, 0.1, 0.1, 1.0}', p.document, q.query) AS rank
          FROM packages p, to_tsquery('english', $1) AS q(query) %s
          WHERE p.document @@ q.query
          ORDER BY rank DESC, p.name
          LIMIT $2::int) AS top
    ORDER BY rank DESC, name)sql";
  std::vector<std::string> params{std::string(query), std::to_string(limit)};
  std::string sql(select);
  const auto hole = sql.find("%s");
  if (server_delay.count() > 0) {
    // In the same statement, so that cancelling the search interrupts the sleep.
    sql.replace(hole, 2, ", (SELECT pg_sleep($3::float8)) AS delay");
    params.push_back(fmt::format("{:.3f}", static_cast<double>(server_delay.count()) / 1000.0));
  } else {
    sql.erase(hole, 2);
  }

  std::optional<result> rows;
  try {
    rows.emplace(db.exec(sql, params, std::move(stop)));
  } catch (const pg_error& e) {
    // The query is the only value of the statement a user chose: 42601 is to_tsquery's
    // syntax error, 22021/22P05 bytes that are not UTF-8, 22023 a phrase distance past 16384.
    if (classify_sqlstate(e.sqlstate()) == error_kind::bad_input)
      throw catalog::invalid_query(std::string("invalid search query: ") + e.what());
    if (e.sqlstate() == "42P01")
      throw pg_error(e.sqlstate(), std::string(e.what()) + " (import the catalogue first: pg_import)");
    throw;
  }
  std::vector<catalog::search_hit> hits;
  hits.reserve(static_cast<std::size_t>(rows->rows()));
  for (int i = 0; i < rows->rows(); ++i)
    hits.push_back({std::string(rows->text(i, 0)), std::string(rows->text(i, 1)), std::string(rows->text(i, 2)),
                    std::string(rows->text(i, 3)), rows->number(i, 4)});
  return hits;
}

} // namespace pg_search
