// slow_commit.hpp - test helpers: records whose commit takes seconds, and a way to see the
// commit holding the catalogue's write lock (so that a test can interrupt it there).
// Distributed under the Boost Software License, Version 1.0.
#ifndef CATALOG_SYNC_TESTS_SLOW_COMMIT_HPP
#define CATALOG_SYNC_TESTS_SLOW_COMMIT_HPP

#include <catalog/record.hpp>

#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace catalog_sync::testing {

/// `n` records just under catalog::max_record_bytes, each about 460 000 words long: indexing
/// them for full-text search makes their commit take about a second per three of them.
inline std::vector<catalog::catalog_record> heavy_records(std::size_t n) {
  std::vector<catalog::catalog_record> out;
  std::string words;
  while (words.size() + 2 < catalog::max_record_bytes - 1000)
    words += "w ";
  for (std::size_t i = 0; i < n; ++i)
    out.push_back({"heavy-" + std::to_string(i), "1.0", "misc", "nobody", words});
  return out;
}

/// True when another connection holds the write lock of the catalogue in `db` (a commit is
/// in progress: staging locks nothing). Takes the lock for an instant when it is free.
inline bool writer_active(const std::filesystem::path& db) {
  sqlite3* c = nullptr;
  if (sqlite3_open_v2(db.c_str(), &c, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    sqlite3_close(c);
    return false;
  }
  const int rc = sqlite3_exec(c, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
  if (rc == SQLITE_OK)
    sqlite3_exec(c, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(c);
  return (rc & 0xff) == SQLITE_BUSY;
}

/// Waits until a commit holds the write lock of `db`; false after `hang` (a hang detector).
inline bool wait_for_commit(const std::filesystem::path& db, std::chrono::seconds hang = std::chrono::seconds(120)) {
  const auto give_up = std::chrono::steady_clock::now() + hang;
  while (!writer_active(db)) {
    if (std::chrono::steady_clock::now() > give_up)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

} // namespace catalog_sync::testing

#endif // CATALOG_SYNC_TESTS_SLOW_COMMIT_HPP
