// catalog/errors.hpp - the exceptions the catalogue throws, one type per cause.
// Distributed under the Boost Software License, Version 1.0.
#ifndef CATALOG_ERRORS_HPP
#define CATALOG_ERRORS_HPP

#include <stdexcept>
#include <string>

namespace catalog {

/// Base of every catalogue error; catch this to handle them all.
/**
 * | type               | cause                                                   | HTTP mapping |
 * |--------------------|---------------------------------------------------------|--------------|
 * | invalid_query      | empty, too long, or an FTS5 syntax error                | 400          |
 * | invalid_limit      | limit outside [1, catalog_db::max_limit]                | 400          |
 * | invalid_record     | a synced record with an empty name                      | 400          |
 * | database_error     | missing, unreadable or corrupt file, busy, I/O          | 500 / 503    |
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

/// SQLite failed: the file is missing, not a catalogue, corrupt, locked for too long, or I/O failed.
class database_error : public error {
public:
  database_error(int sqlite_code, const std::string& what) : error(what), code_(sqlite_code) {}

  /// SQLite's extended result code (SQLITE_CANTOPEN, SQLITE_NOTADB, SQLITE_BUSY, ...).
  int sqlite_code() const noexcept { return code_; }
  /// True when the database was locked by another writer for longer than the busy timeout.
  bool busy() const noexcept { return (code_ & 0xff) == 5 /* SQLITE_BUSY */; }

private:
  int code_;
};

} // namespace catalog

#endif // CATALOG_ERRORS_HPP
