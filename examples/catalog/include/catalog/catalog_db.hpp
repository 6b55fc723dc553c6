// catalog/catalog_db.hpp - a package catalogue in SQLite: full-text search and snapshot sync.
// Distributed under the Boost Software License, Version 1.0.
#ifndef CATALOG_CATALOG_DB_HPP
#define CATALOG_CATALOG_DB_HPP

#include "catalog/errors.hpp"
#include "catalog/record.hpp"

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

namespace catalog {

/// How catalog_db opens its file.
enum class open_mode {
  /// The file must exist and be a catalogue; writes are refused (PRAGMA query_only).
  read_only,
  /// Creates the file and the schema when missing; needed for begin_sync.
  read_write,
};

class catalog_sync;

/// A guard for catalog_sync::commit: how much of the catalogue one snapshot may delete.
/**
 * An empty or truncated snapshot (a filter that matched nothing, an API that answered with
 * fewer pages than it has) looks exactly like "everything was removed"; the guard turns that
 * into an error instead of an empty catalogue.
 */
struct deletion_limit {
  /// Largest share of the current records one commit may delete, in [0, 1]. Deleting every
  /// record of a non-empty catalogue is refused whatever the share.
  double max_share = 0.5;
};

/// One SQLite connection to a catalogue file: blocking, and for one thread at a time.
/**
 * The file is in WAL mode, so any number of connections (in this process or others) read in
 * parallel with one writer. Writers are serialised by SQLite's file lock; `busy_timeout` is how
 * long a writer (or a reader during a checkpoint) waits for the lock before database_error.
 *
 * @par Thread safety
 * Distinct objects: safe. Shared object: unsafe. A connection may move between threads, but
 * only one may use it at a time (use catalog::connection_pool to share a file between threads).
 */
class catalog_db {
public:
  /// Largest `limit` search accepts.
  static constexpr int max_limit = 1000;
  /// Longest query search accepts, in bytes.
  static constexpr std::size_t max_query_bytes = 1024;

  /// Opens (or, in read_write mode, creates) the catalogue in `file`.
  /**
   * @throws database_error when the file is missing (read_only), cannot be opened, is not an
   *         SQLite database, or is a database without this catalogue's schema.
   */
  explicit catalog_db(const std::filesystem::path& file, open_mode mode = open_mode::read_only,
                      std::chrono::milliseconds busy_timeout = std::chrono::seconds(5));
  catalog_db(catalog_db&&) noexcept;
  catalog_db& operator=(catalog_db&&) noexcept;
  ~catalog_db();

  /// The best `limit` matches of the FTS5 `query` over name and description, best first.
  /**
   * Ranking is bm25 with a name match weighing 10 times a description match; ties are broken
   * by name, so results are deterministic. `query` uses FTS5 syntax: words (AND-ed), "phrases",
   * prefix* , OR, NOT, NEAR(...), name:word.
   *
   * @throws invalid_query when `query` is blank, longer than max_query_bytes, or not valid FTS5.
   * @throws invalid_limit when `limit` is outside [1, max_limit].
   * @throws database_error when SQLite fails (corrupt file, I/O).
   */
  std::vector<search_hit> search(std::string_view query, int limit) const;

  /// The record named `name`, if any.
  std::optional<catalog_record> find(std::string_view name) const;

  /// How many records the catalogue holds.
  std::size_t size() const;

  /// Starts replacing the whole catalogue by a snapshot streamed in with catalog_sync::add.
  /**
   * Nothing visible changes until catalog_sync::commit. This connection must stay alive, and
   * serve no other sync, until the returned object is destroyed.
   *
   * @throws std::logic_error when the connection is read_only or already has a sync open.
   */
  catalog_sync begin_sync();

  /// Merges the full-text index's segments; worth doing after a large sync.
  void optimize();

  /// The file this connection was opened on.
  const std::filesystem::path& path() const noexcept;

  /// Makes the statement running on this connection stop soon: search() then throws
  /// database_error with interrupted(). Callable from any thread while the connection is open
  /// (sqlite3_interrupt), quick, never throws: made for a std::stop_callback. A no-op when no
  /// statement runs; a statement about to finish may finish.
  void interrupt() const noexcept;

private:
  friend class catalog_sync;
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// A snapshot being staged: add() every record, then commit() applies the difference at once.
/**
 * Records are staged in a temporary table private to the connection, so staging takes no lock
 * on the catalogue and readers keep seeing the previous version. commit() then compares the
 * staging table with the live one in a single write transaction: records missing from the
 * snapshot are deleted, changed ones updated, new ones added.
 *
 * If commit() throws (for example database_error with busy() when another writer holds the lock
 * past the timeout), the catalogue is unchanged and the staged records are kept, so commit() may
 * be retried. Destroying an uncommitted sync discards the staged records: an abandoned sync
 * changes nothing. When a snapshot names a record twice, the last one wins; duplicates()
 * counts such records, so that a caller can report them.
 *
 * @par Example
 * @code
 * auto sync = db.begin_sync();
 * while (auto page = fetch_next_page()) sync.add(*page);
 * catalog::sync_counts c = sync.commit();
 * @endcode
 */
class catalog_sync {
public:
  catalog_sync(catalog_sync&&) noexcept;
  catalog_sync& operator=(catalog_sync&&) = delete;
  ~catalog_sync();

  /// Stages a batch in one transaction: all of it or (on exception) none of it.
  /**
   * @throws invalid_record when a record has an empty name or is larger than
   *         catalog::max_record_bytes (nothing of the batch is staged).
   * @throws std::logic_error after commit() or rollback().
   */
  void add(std::span<const catalog_record> batch);
  void add(const catalog_record& record) { add(std::span<const catalog_record>(&record, 1)); }

  /// How many distinct names are staged so far.
  std::size_t staged() const;

  /// How many added records named a record already staged (and replaced it).
  std::size_t duplicates() const;
  /// The first duplicated names (at most max_duplicate_sample), in the order they were seen.
  std::vector<std::string> duplicate_names() const;
  static constexpr std::size_t max_duplicate_sample = 5;

  /// Makes the catalogue equal to the staged snapshot, atomically, and reports the difference.
  sync_counts commit();

  /// The same, unless that would delete more than `limit` allows (nullopt: no limit).
  /**
   * @throws mass_deletion naming the counts when it would; the catalogue is unchanged and the
   *         staged records are kept (commit() without a limit may follow).
   */
  sync_counts commit(std::optional<deletion_limit> limit);

  /// The same, stopped early by a stop request on `stop` (from any thread).
  /**
   * The running statement is interrupted (sqlite3_interrupt) and the transaction rolled back:
   * the catalogue is unchanged and the staged records are kept. Stopping takes at most one
   * record's worth of work (see catalog::max_record_bytes), not the rest of the commit. A
   * stop that comes after the transaction has committed changes nothing: the counts are
   * returned.
   *
   * @throws database_error with interrupted() when stopped; otherwise as commit(limit).
   */
  sync_counts commit(std::optional<deletion_limit> limit, std::stop_token stop);

  /// Discards the staged records (what the destructor does when commit() did not succeed).
  void rollback() noexcept;

private:
  friend class catalog_db;
  explicit catalog_sync(catalog_db::impl& db);
  catalog_db::impl* db_;
};

} // namespace catalog

#endif // CATALOG_CATALOG_DB_HPP
