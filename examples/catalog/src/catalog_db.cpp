// catalog_db.cpp - the SQLite side of the catalogue.
// Distributed under the Boost Software License, Version 1.0.
#include "catalog/catalog_db.hpp"

#include <fmt/format.h>
#include <fmt/std.h>
#include <sqlite3.h>

#include <algorithm>
#include <functional>
#include <cctype>
#include <stdexcept>
#include <utility>

namespace catalog {
namespace {

// Bump when the schema changes; a file with another version is refused, not "upgraded" blindly.
constexpr int schema_version = 1;

// External-content FTS5: the text lives once, in `packages`; the triggers keep the index in
// step with every insert, update and delete, including the ones a sync's diff makes.
constexpr const char* schema_sql = R"sql(
CREATE TABLE packages(
  id          INTEGER PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,
  version     TEXT NOT NULL,
  section     TEXT NOT NULL,
  maintainer  TEXT NOT NULL,
  description TEXT NOT NULL
);
CREATE VIRTUAL TABLE packages_fts USING fts5(
  name, description, content = 'packages', content_rowid = 'id'
);
CREATE TRIGGER packages_ai AFTER INSERT ON packages BEGIN
  INSERT INTO packages_fts(rowid, name, description) VALUES (new.id, new.name, new.description);
END;
CREATE TRIGGER packages_ad AFTER DELETE ON packages BEGIN
  INSERT INTO packages_fts(packages_fts, rowid, name, description)
  VALUES ('delete', old.id, old.name, old.description);
END;
CREATE TRIGGER packages_au AFTER UPDATE ON packages BEGIN
  INSERT INTO packages_fts(packages_fts, rowid, name, description)
  VALUES ('delete', old.id, old.name, old.description);
  INSERT INTO packages_fts(rowid, name, description) VALUES (new.id, new.name, new.description);
END;
)sql";

// Name matches weigh 10x description matches; ties by name keep results deterministic.
constexpr const char* search_sql = R"sql(
SELECT p.name, p.version, p.section,
       snippet(packages_fts, 1, ?3, ?4, '...', 16),
       bm25(packages_fts, 10.0, 1.0) AS score
FROM packages_fts JOIN packages AS p ON p.id = packages_fts.rowid
WHERE packages_fts MATCH ?1
ORDER BY score, p.name
LIMIT ?2
)sql";

// Insert, and on a name already staged replace the row: a separate statement, so that a
// duplicate is noticed (sqlite3_changes is 0 after DO NOTHING) and can be reported.
constexpr const char* stage_sql = R"sql(
INSERT INTO temp.catalog_staging(name, version, section, maintainer, description)
VALUES (?1, ?2, ?3, ?4, ?5)
ON CONFLICT(name) DO NOTHING
)sql";

constexpr const char* restage_sql = R"sql(
UPDATE temp.catalog_staging SET version = ?2, section = ?3, maintainer = ?4, description = ?5
WHERE name = ?1
)sql";

struct statement_deleter {
  void operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }
};
using statement = std::unique_ptr<sqlite3_stmt, statement_deleter>;

[[noreturn]] void fail(sqlite3* db, int rc, std::string_view doing) {
  throw database_error(rc, fmt::format("{}: {}", doing, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
}

void exec(sqlite3* db, const char* sql, std::string_view doing) {
  if (int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr); rc != SQLITE_OK)
    fail(db, rc, doing);
}

statement prepare(sqlite3* db, const char* sql, bool persistent = false) {
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v3(db, sql, -1, persistent ? SQLITE_PREPARE_PERSISTENT : 0, &s, nullptr);
  if (rc != SQLITE_OK)
    fail(db, rc, "cannot prepare a catalogue statement");
  return statement(s);
}

// Resets a cached statement on every exit path so it never holds a read transaction open.
struct reset_on_exit {
  sqlite3_stmt* s;
  ~reset_on_exit() {
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
  }
};

void bind_text(sqlite3* db, sqlite3_stmt* s, int index, std::string_view text) {
  if (int rc = sqlite3_bind_text(s, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
      rc != SQLITE_OK)
    fail(db, rc, "cannot bind a parameter");
}

std::string column_text(sqlite3_stmt* s, int column) {
  auto* text = reinterpret_cast<const char*>(sqlite3_column_text(s, column));
  return text ? std::string(text, static_cast<std::size_t>(sqlite3_column_bytes(s, column))) : std::string();
}

std::int64_t query_int(sqlite3* db, const char* sql, std::string_view doing) {
  statement s = prepare(db, sql);
  int rc = sqlite3_step(s.get());
  if (rc == SQLITE_ROW)
    return sqlite3_column_int64(s.get(), 0);
  if (rc == SQLITE_DONE)
    return 0;
  fail(db, rc, doing);
}

// Rolls back unless dismissed: the one place a failed write transaction is undone.
struct transaction {
  sqlite3* db;
  bool done = false;
  transaction(sqlite3* d, const char* begin) : db(d) { exec(db, begin, "cannot begin a transaction"); }
  void commit() {
    exec(db, "COMMIT", "cannot commit");
    done = true;
  }
  ~transaction() {
    if (!done && !sqlite3_get_autocommit(db))
      sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  }
};

} // namespace

struct catalog_db::impl {
  std::filesystem::path path;
  open_mode mode = open_mode::read_only;
  sqlite3* db = nullptr;
  statement search;
  statement stage;
  statement restage;
  bool sync_open = false;
  // The open sync's duplicate names: how many, and the first few.
  std::size_t duplicates = 0;
  std::vector<std::string> duplicate_sample;

  ~impl() {
    search.reset();
    stage.reset();
    restage.reset();
    if (db) {
      // Discard a staging table left by a sync that outlived nothing (close drops temp anyway).
      sqlite3_close_v2(db);
    }
  }

  std::string where() const { return fmt::format("catalogue '{}'", path.string()); }
};

catalog_db::catalog_db(const std::filesystem::path& file, open_mode mode, std::chrono::milliseconds busy_timeout)
    : impl_(std::make_unique<impl>()) {
  impl_->path = file;
  impl_->mode = mode;
  const std::string where = impl_->where();

  // SQLite would happily create an empty file for a typo'd path; a reader must not.
  std::error_code ec;
  if (mode == open_mode::read_only && !std::filesystem::exists(file, ec))
    throw database_error(SQLITE_CANTOPEN, fmt::format("cannot open {}: no such file", where));

  // NOMUTEX: each connection is used by one thread at a time (see connection_pool), so
  // SQLite's per-connection mutex would only cost.
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (mode == open_mode::read_write)
    flags |= SQLITE_OPEN_CREATE;
  int rc = sqlite3_open_v2(file.c_str(), &impl_->db, flags, nullptr);
  if (rc != SQLITE_OK)
    fail(impl_->db, rc, fmt::format("cannot open {}", where));
  sqlite3_extended_result_codes(impl_->db, 1);
  sqlite3_busy_timeout(impl_->db, static_cast<int>(busy_timeout.count()));

  // The first read is where a non-database file shows (SQLITE_NOTADB).
  sqlite3* db = impl_->db;
  auto version = query_int(db, "PRAGMA user_version", fmt::format("cannot read {}", where));
  if (version == 0 && mode == open_mode::read_write) {
    exec(db, "PRAGMA journal_mode = WAL", fmt::format("cannot switch {} to WAL", where));
    transaction tx(db, "BEGIN IMMEDIATE");
    // Re-read under the write lock: another process may have created the schema meanwhile.
    version = query_int(db, "PRAGMA user_version", "cannot read the schema version");
    if (version == 0) {
      if (query_int(db, "SELECT count(*) FROM sqlite_schema", "cannot read the schema") != 0)
        throw database_error(SQLITE_NOTADB, fmt::format("{} is an SQLite database of something else", where));
      exec(db, schema_sql, fmt::format("cannot create the schema of {}", where));
      exec(db, fmt::format("PRAGMA user_version = {}", schema_version).c_str(), "cannot set the schema version");
      version = schema_version;
    }
    tx.commit();
  }
  if (version != schema_version)
    throw database_error(SQLITE_NOTADB, fmt::format("{} is not a catalogue database (schema version {}, expected {})",
                                                    where, version, schema_version));
  // WAL + NORMAL: durable across application crashes, one fsync per checkpoint, not per commit.
  exec(db, "PRAGMA synchronous = NORMAL", "cannot configure the connection");
  if (mode == open_mode::read_only)
    exec(db, "PRAGMA query_only = ON", "cannot configure the connection");
}

catalog_db::catalog_db(catalog_db&&) noexcept = default;
catalog_db& catalog_db::operator=(catalog_db&&) noexcept = default;
catalog_db::~catalog_db() = default;

const std::filesystem::path& catalog_db::path() const noexcept { return impl_->path; }

std::vector<search_hit> catalog_db::search(std::string_view query, int limit) const {
  auto blank = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  if (std::all_of(query.begin(), query.end(), blank))
    throw invalid_query("invalid search query: the query is empty");
  if (query.size() > max_query_bytes)
    throw invalid_query(fmt::format("invalid search query: longer than {} bytes", max_query_bytes));
  if (limit < 1 || limit > max_limit)
    throw invalid_limit(fmt::format("invalid limit {}: must be between 1 and {}", limit, max_limit));

  sqlite3* db = impl_->db;
  if (!impl_->search)
    impl_->search = prepare(db, search_sql, /*persistent=*/true);
  sqlite3_stmt* s = impl_->search.get();
  reset_on_exit reset{s};
  bind_text(db, s, 1, query);
  sqlite3_bind_int(s, 2, limit);
  bind_text(db, s, 3, raw_highlight_begin);
  bind_text(db, s, 4, raw_highlight_end);

  std::vector<search_hit> hits;
  for (;;) {
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE)
      break;
    if (rc != SQLITE_ROW) {
      // Plain SQLITE_ERROR from a MATCH is FTS5 rejecting the query ("fts5: syntax error near",
      // "no such column"); anything else (corrupt, I/O, busy) is the database's fault.
      if (rc == SQLITE_ERROR)
        throw invalid_query(fmt::format("invalid search query: {}", sqlite3_errmsg(db)));
      fail(db, rc, fmt::format("search failed in {}", impl_->where()));
    }
    hits.push_back({column_text(s, 0), column_text(s, 1), column_text(s, 2), encode_snippet(column_text(s, 3)),
                    sqlite3_column_double(s, 4)});
  }
  return hits;
}

void catalog_db::interrupt() const noexcept { sqlite3_interrupt(impl_->db); }

std::optional<catalog_record> catalog_db::find(std::string_view name) const {
  sqlite3* db = impl_->db;
  statement s = prepare(db, "SELECT name, version, section, maintainer, description FROM packages WHERE name = ?1");
  bind_text(db, s.get(), 1, name);
  int rc = sqlite3_step(s.get());
  if (rc == SQLITE_DONE)
    return std::nullopt;
  if (rc != SQLITE_ROW)
    fail(db, rc, fmt::format("lookup failed in {}", impl_->where()));
  return catalog_record{column_text(s.get(), 0), column_text(s.get(), 1), column_text(s.get(), 2),
                        column_text(s.get(), 3), column_text(s.get(), 4)};
}

std::size_t catalog_db::size() const {
  return static_cast<std::size_t>(query_int(impl_->db, "SELECT count(*) FROM packages", "cannot count records"));
}

void catalog_db::optimize() {
  exec(impl_->db, "INSERT INTO packages_fts(packages_fts) VALUES ('optimize')", "cannot optimise the index");
}

catalog_sync catalog_db::begin_sync() {
  if (impl_->mode != open_mode::read_write)
    throw std::logic_error("catalog_db::begin_sync needs a connection opened with open_mode::read_write");
  if (impl_->sync_open)
    throw std::logic_error("catalog_db::begin_sync: this connection already has a sync open");
  return catalog_sync(*impl_);
}

// --- catalog_sync ---------------------------------------------------------------------------

catalog_sync::catalog_sync(catalog_db::impl& db) : db_(&db) {
  // TEMP: private to this connection, outside the catalogue file, so staging locks nothing.
  // A rowid table with its own index on name, not a WITHOUT ROWID table keyed by name: there
  // the whole record is the key, and each lookup the commit makes (one per live record, to
  // find what to delete) that meets a large record compares against all of it (a 20 MB one
  // made a commit take 26 s). The index holds the names only.
  exec(db.db,
       "DROP TABLE IF EXISTS temp.catalog_staging;"
       "CREATE TEMP TABLE catalog_staging(name TEXT NOT NULL UNIQUE, version TEXT NOT NULL,"
       " section TEXT NOT NULL, maintainer TEXT NOT NULL, description TEXT NOT NULL)",
       "cannot create the staging table");
  db.sync_open = true;
  db.duplicates = 0;
  db.duplicate_sample.clear();
}

catalog_sync::catalog_sync(catalog_sync&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}

catalog_sync::~catalog_sync() { rollback(); }

void catalog_sync::add(std::span<const catalog_record> batch) {
  if (!db_)
    throw std::logic_error("catalog_sync::add after commit or rollback");
  for (const auto& r : batch) {
    if (r.name.empty())
      throw invalid_record("invalid record: the name is empty");
    if (const std::size_t bytes = record_bytes(r); bytes > max_record_bytes)
      throw invalid_record(fmt::format("invalid record \"{}\": {} bytes, over the cap of {} bytes per record",
                                       r.name.substr(0, 100), bytes, max_record_bytes));
  }

  sqlite3* db = db_->db;
  if (!db_->stage)
    db_->stage = prepare(db, stage_sql, /*persistent=*/true);
  if (!db_->restage)
    db_->restage = prepare(db, restage_sql, /*persistent=*/true);
  auto run = [db](sqlite3_stmt* s, const catalog_record& r) {
    reset_on_exit reset{s};
    bind_text(db, s, 1, r.name);
    bind_text(db, s, 2, r.version);
    bind_text(db, s, 3, r.section);
    bind_text(db, s, 4, r.maintainer);
    bind_text(db, s, 5, r.description);
    if (int rc = sqlite3_step(s); rc != SQLITE_DONE)
      fail(db, rc, "cannot stage a record");
    return sqlite3_changes(db);
  };
  std::size_t duplicates = 0;
  std::vector<std::string> sample = db_->duplicate_sample;
  transaction tx(db, "BEGIN");
  for (const auto& r : batch) {
    if (run(db_->stage.get(), r) == 0) { // already staged: the last one wins
      run(db_->restage.get(), r);
      ++duplicates;
      if (sample.size() < max_duplicate_sample)
        sample.push_back(r.name);
    }
  }
  tx.commit();
  // Counted only once the batch is in: a failed batch stages nothing, so it counts nothing.
  db_->duplicates += duplicates;
  db_->duplicate_sample = std::move(sample);
}

std::size_t catalog_sync::duplicates() const { return db_ ? db_->duplicates : 0; }

std::vector<std::string> catalog_sync::duplicate_names() const {
  return db_ ? db_->duplicate_sample : std::vector<std::string>{};
}

std::size_t catalog_sync::staged() const {
  if (!db_)
    return 0;
  return static_cast<std::size_t>(
      query_int(db_->db, "SELECT count(*) FROM temp.catalog_staging", "cannot count staged records"));
}

sync_counts catalog_sync::commit() { return commit(std::nullopt); }

sync_counts catalog_sync::commit(std::optional<deletion_limit> limit) { return commit(limit, {}); }

namespace {

// Stops the commit on a stop request: sqlite3_interrupt stops the statement running now, and
// the progress handler (every few hundred VM steps) catches a request made between two
// statements, which sqlite3_interrupt alone would miss (a statement starting on an idle
// connection clears the interrupt).
class commit_interrupter {
public:
  commit_interrupter(sqlite3* db, std::stop_token stop)
      : db_(db), stop_(std::move(stop)), on_stop_(stop_, [db] { sqlite3_interrupt(db); }) {
    if (stop_.stop_possible())
      sqlite3_progress_handler(db_, 256, &stopped, &stop_);
  }
  ~commit_interrupter() {
    if (stop_.stop_possible())
      sqlite3_progress_handler(db_, 0, nullptr, nullptr);
  }
  commit_interrupter(const commit_interrupter&) = delete;
  commit_interrupter& operator=(const commit_interrupter&) = delete;

  void throw_if_stopped() const {
    if (stop_.stop_requested())
      throw database_error(SQLITE_INTERRUPT, "the commit was interrupted; nothing was changed");
  }

private:
  static int stopped(void* stop) { return static_cast<std::stop_token*>(stop)->stop_requested() ? 1 : 0; }

  sqlite3* db_;
  std::stop_token stop_;
  std::stop_callback<std::function<void()>> on_stop_;
};

} // namespace

sync_counts catalog_sync::commit(std::optional<deletion_limit> limit, std::stop_token stop) {
  if (!db_)
    throw std::logic_error("catalog_sync::commit after commit or rollback");
  sqlite3* db = db_->db;
  sync_counts counts;
  {
    if (stop.stop_requested())
      throw database_error(SQLITE_INTERRUPT, "the commit was interrupted; nothing was changed");
    // IMMEDIATE takes the write lock up front (waiting up to busy_timeout), so the diff below
    // never fails half-way for lack of a lock; any failure rolls the whole diff back.
    transaction tx(db, "BEGIN IMMEDIATE");
    // Declared after tx, so destroyed before it: the rollback itself is never interrupted.
    commit_interrupter interrupter(db, std::move(stop));
    const auto total = static_cast<std::size_t>(
        query_int(db, "SELECT count(*) FROM temp.catalog_staging", "cannot count staged records"));
    if (limit) {
      // Counted inside the write transaction: what is checked is what would be deleted.
      const auto live =
          static_cast<std::size_t>(query_int(db, "SELECT count(*) FROM packages", "cannot count records"));
      const auto doomed = static_cast<std::size_t>(
          query_int(db, "SELECT count(*) FROM packages WHERE name NOT IN (SELECT name FROM temp.catalog_staging)",
                    "cannot count removed records"));
      const double share = std::clamp(limit->max_share, 0.0, 1.0);
      if (doomed > 0 && (doomed == live || static_cast<double>(doomed) > share * static_cast<double>(live)))
        throw mass_deletion(doomed, live, share);
    }
    exec(db, "DELETE FROM packages WHERE name NOT IN (SELECT name FROM temp.catalog_staging)",
         "cannot delete removed records");
    counts.deleted = static_cast<std::size_t>(sqlite3_changes64(db));
    exec(db,
         "UPDATE packages SET version = s.version, section = s.section, maintainer = s.maintainer,"
         " description = s.description FROM temp.catalog_staging AS s"
         " WHERE packages.name = s.name AND (packages.version IS NOT s.version"
         " OR packages.section IS NOT s.section OR packages.maintainer IS NOT s.maintainer"
         " OR packages.description IS NOT s.description)",
         "cannot update changed records");
    counts.updated = static_cast<std::size_t>(sqlite3_changes64(db));
    exec(db,
         "INSERT INTO packages(name, version, section, maintainer, description)"
         " SELECT s.name, s.version, s.section, s.maintainer, s.description FROM temp.catalog_staging AS s"
         " WHERE NOT EXISTS (SELECT 1 FROM packages AS p WHERE p.name = s.name) ORDER BY s.name",
         "cannot insert new records");
    counts.added = static_cast<std::size_t>(sqlite3_changes64(db));
    counts.unchanged = total - counts.added - counts.updated;
    interrupter.throw_if_stopped(); // stopped while the last statement finished anyway
    tx.commit();
  }
  rollback(); // the snapshot is applied; drop the staging table
  return counts;
}

void catalog_sync::rollback() noexcept {
  if (!db_)
    return;
  sqlite3_exec(db_->db, "DROP TABLE IF EXISTS temp.catalog_staging", nullptr, nullptr, nullptr);
  db_->sync_open = false;
  db_ = nullptr;
}

} // namespace catalog
