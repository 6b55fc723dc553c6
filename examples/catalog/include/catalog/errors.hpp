// catalog/errors.hpp - the exceptions the catalogue throws, one type per cause.
// Distributed under the Boost Software License, Version 1.0.
#ifndef CATALOG_ERRORS_HPP
#define CATALOG_ERRORS_HPP

#include <cstddef>
#include <stdexcept>
#include <string>

namespace catalog {

/// Base of every catalogue error; catch this to handle them all.
/**
 * | type               | cause                                                   | HTTP mapping |
 * |--------------------|---------------------------------------------------------|--------------|
 * | invalid_query      | empty, too long, or an FTS5 syntax error                | 400          |
 * | invalid_limit      | limit outside [1, catalog_db::max_limit]                | 400          |
 * | invalid_record     | a synced record with an empty name, or over the size cap | 400          |
 * | mass_deletion      | a guarded sync commit would delete too much             | (refused)    |
 * | database_error     | missing, unreadable or corrupt file, busy, I/O          | 500 / 503    |
 * | unavailable        | a database server down, restarting, or connection lost  | 503          |
 *
 * None of them leaves a partial write behind: a failing operation changes nothing.
 * Misusing the API (adding to a committed sync) is a std::logic_error instead.
 */
class error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// The search query was rejected; what() starts with "invalid search query: ".
class invalid_query : public error {
public:
  using error::error;
};

/// The result limit was out of range.
class invalid_limit : public error {
public:
  using error::error;
};

/// A record handed to catalog_sync::add cannot be stored (empty name).
class invalid_record : public error {
public:
  using error::error;
};

/// A sync commit with a deletion_limit would have deleted more than it allows; nothing changed.
class mass_deletion : public error {
public:
  mass_deletion(std::size_t would_delete, std::size_t catalogue_size, double max_share)
      : error(message(would_delete, catalogue_size, max_share)), would_delete_(would_delete),
        catalogue_size_(catalogue_size) {}

  /// How many records the snapshot would have removed.
  std::size_t would_delete() const noexcept { return would_delete_; }
  /// How many records the catalogue holds (and still holds).
  std::size_t catalogue_size() const noexcept { return catalogue_size_; }

private:
  static std::string message(std::size_t n, std::size_t of, double max_share) {
    const auto percent = [](double x) { return std::to_string(static_cast<long>(x * 100 + 0.5)) + "%"; };
    const double share = of == 0 ? 0.0 : static_cast<double>(n) / static_cast<double>(of);
    return "refusing to delete " + std::to_string(n) + " of the catalogue's " + std::to_string(of) + " records (" +
           percent(share) + (n == of ? ": all of them" : ", more than the " + percent(max_share) + " allowed") +
           "); the catalogue is unchanged";
  }
  std::size_t would_delete_;
  std::size_t catalogue_size_;
};

/// SQLite failed: the file is missing, not a catalogue, corrupt, locked for too long, or I/O failed.
class database_error : public error {
public:
  database_error(int sqlite_code, const std::string& what) : error(what), code_(sqlite_code) {}

  /// SQLite's extended result code (SQLITE_CANTOPEN, SQLITE_NOTADB, SQLITE_BUSY, ...).
  int sqlite_code() const noexcept { return code_; }
  /// True when the database was locked by another writer for longer than the busy timeout.
  bool busy() const noexcept { return (code_ & 0xff) == 5 /* SQLITE_BUSY */; }
  /// True when the statement was stopped by catalog_db::interrupt().
  bool interrupted() const noexcept { return (code_ & 0xff) == 9 /* SQLITE_INTERRUPT */; }

private:
  int code_;
};

/// A database server cannot be used right now (down, restarting, connection lost): worth
/// retrying later. What the call was doing did not happen, or (for a read) did not finish.
class unavailable : public error {
public:
  using error::error;
};

} // namespace catalog

#endif // CATALOG_ERRORS_HPP
