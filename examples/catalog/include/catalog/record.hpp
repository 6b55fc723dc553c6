// catalog/record.hpp - the records a package catalogue holds, and what operations report.
// Distributed under the Boost Software License, Version 1.0.
#ifndef CATALOG_RECORD_HPP
#define CATALOG_RECORD_HPP

#include <cstddef>
#include <string>
#include <string_view>

namespace catalog {

/// One package of the catalogue. `name` is the key: a catalogue holds at most one record per name.
struct catalog_record {
  std::string name;
  std::string version;
  std::string section;
  std::string maintainer;
  /// Synopsis, then the long description (if any) after a '\n'.
  std::string description;

  bool operator==(const catalog_record&) const = default;
};

/// The largest record a catalogue accepts, counting the bytes of all its fields (1 MiB).
/**
 * A bound on what one row costs: a commit indexes each record for full-text search in one
 * uninterruptible step, so this cap also bounds how long a cancelled commit takes to stop.
 * Real package records are a few kilobytes.
 */
inline constexpr std::size_t max_record_bytes = std::size_t{1} << 20;

/// The size the cap counts: the bytes of every field.
inline std::size_t record_bytes(const catalog_record& r) noexcept {
  return r.name.size() + r.version.size() + r.section.size() + r.maintainer.size() + r.description.size();
}

/// One ranked result of catalog_db::search.
struct search_hit {
  std::string name;
  std::string version;
  std::string section;
  /// An excerpt of the description with each matched term wrapped in
  /// catalog::highlight_begin / catalog::highlight_end; a `[`, `]` or `\` of the text itself
  /// is preceded by a `\`, so that data reading "[x]" is never taken for a match.
  std::string snippet;
  /// The store's rank: SQLite's bm25 is lower for a better match (scores are negative);
  /// PostgreSQL's ts_rank (examples/pg_search) is higher for a better match.
  double score = 0.0;
};

/// The markers search_hit::snippet puts around matched terms.
inline constexpr const char* highlight_begin = "[";
inline constexpr const char* highlight_end = "]";

/// The markers a store is asked to put around matched terms before encode_snippet turns them
/// into highlight_begin / highlight_end: bytes that never occur in UTF-8 text, so that no
/// character of the catalogue can be taken for one.
inline constexpr std::string_view raw_highlight_begin = "\xFE";
inline constexpr std::string_view raw_highlight_end = "\xFF";

/// `raw` (matches between raw_highlight_begin and raw_highlight_end) as search_hit::snippet
/// holds it: the markers become `[` `]`, and the text's own `[`, `]` and `\` get a `\` before.
inline std::string encode_snippet(std::string_view raw) {
  std::string out;
  out.reserve(raw.size() + 8);
  for (const char c : raw) {
    if (c == raw_highlight_begin[0])
      out += highlight_begin;
    else if (c == raw_highlight_end[0])
      out += highlight_end;
    else {
      if (c == '[' || c == ']' || c == '\\')
        out += '\\';
      out += c;
    }
  }
  return out;
}

/// What a committed sync changed. added + updated + unchanged is the snapshot's size.
struct sync_counts {
  std::size_t added = 0;
  std::size_t updated = 0;
  std::size_t deleted = 0;
  std::size_t unchanged = 0;

  bool operator==(const sync_counts&) const = default;
};

} // namespace catalog

#endif // CATALOG_RECORD_HPP
