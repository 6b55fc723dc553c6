// catalog/connection_pool.hpp - a small bounded pool of catalog_db connections.
// Distributed under the Boost Software License, Version 1.0.
#ifndef CATALOG_CONNECTION_POOL_HPP
#define CATALOG_CONNECTION_POOL_HPP

#include "catalog/catalog_db.hpp"

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <mutex>
#include <vector>

namespace catalog {

/// Shares one catalogue file between threads: each thread borrows a connection of its own.
/**
 * An SQLite connection must not be used by two threads at once, and a connection is worth
 * keeping (it caches the schema and prepared statements). This pool opens connections lazily,
 * at most `max_connections` of them, and lends each to one thread at a time. Size it to the
 * number of threads that search (the blocking pool's thread count) and nobody ever waits.
 *
 * Why a pool rather than a thread_local connection: the pool's lifetime is explicit (the
 * connections close when it is destroyed, so a server can be stopped and its file replaced or
 * deleted), it serves any thread (pool workers, the CLI's main thread, an event-loop thread in
 * --inline mode) and it bounds the number of open files.
 *
 * The first connection is opened by the constructor, so a missing or corrupt file is reported
 * at start-up (database_error), not on the first request.
 *
 * @par Thread safety
 * acquire() may be called concurrently; each lease is for the thread holding it.
 */
class connection_pool {
public:
  connection_pool(std::filesystem::path file, std::size_t max_connections,
                  open_mode mode = open_mode::read_only,
                  std::chrono::milliseconds busy_timeout = std::chrono::seconds(5));
  connection_pool(const connection_pool&) = delete;
  connection_pool& operator=(const connection_pool&) = delete;

  /// A borrowed connection, returned to the pool on destruction.
  class lease {
  public:
    lease(lease&& other) noexcept : pool_(other.pool_), db_(other.db_) { other.db_ = nullptr; }
    lease& operator=(lease&&) = delete;
    ~lease() {
      if (db_)
        pool_->release(db_);
    }
    catalog_db& operator*() const noexcept { return *db_; }
    catalog_db* operator->() const noexcept { return db_; }

  private:
    friend class connection_pool;
    lease(connection_pool* pool, catalog_db* db) noexcept : pool_(pool), db_(db) {}
    connection_pool* pool_;
    catalog_db* db_;
  };

  /// Borrows a free connection, opening one if none is free and fewer than the maximum exist;
  /// otherwise waits for one to be returned.
  lease acquire();

  /// Connections opened so far.
  std::size_t opened() const;
  std::size_t max_connections() const noexcept { return max_; }
  const std::filesystem::path& path() const noexcept { return file_; }

private:
  void release(catalog_db* db) noexcept;

  std::filesystem::path file_;
  std::size_t max_;
  open_mode mode_;
  std::chrono::milliseconds busy_timeout_;
  mutable std::mutex mutex_;
  std::condition_variable returned_;
  std::vector<std::unique_ptr<catalog_db>> all_;
  std::vector<catalog_db*> free_;
};

} // namespace catalog

#endif // CATALOG_CONNECTION_POOL_HPP
