// catalog/json.hpp - nlohmann::json conversions for the catalogue's types.
// Distributed under the Boost Software License, Version 1.0.
#ifndef CATALOG_JSON_HPP
#define CATALOG_JSON_HPP

#include "catalog/errors.hpp"
#include "catalog/record.hpp"

#include <nlohmann/json.hpp>

#include <string>

namespace catalog {

// Found by argument-dependent lookup: `nlohmann::json j = record; j.get<catalog_record>()`.

inline void to_json(nlohmann::json& j, const catalog_record& r) {
  j = {{"name", r.name},
       {"version", r.version},
       {"section", r.section},
       {"maintainer", r.maintainer},
       {"description", r.description}};
}

namespace detail {

// A text field as real APIs send it: a string, a number (`"version": 2` means "2"), or null or
// missing for "none". Anything else is an error naming the field.
inline std::string text_field(const nlohmann::json& j, const char* key, bool required) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required)
      throw invalid_record(std::string("invalid record: field \"") + key + "\" is " +
                           (it == j.end() ? "missing" : "null"));
    return {};
  }
  if (it->is_string())
    return it->get<std::string>();
  if (it->is_number())
    return it->dump(); // the number's JSON text: 2, 2.5, -1
  throw invalid_record(std::string("invalid record: field \"") + key +
                       "\" must be a string, a number or null, but is " + it->type_name());
}

} // namespace detail

/// Missing or null fields other than "name" read as empty, numbers as their text.
/// @throws invalid_record naming the field when the name is missing or empty-ish (null), a
///         field has another type (object, array, boolean), or `j` is not an object.
inline void from_json(const nlohmann::json& j, catalog_record& r) {
  if (!j.is_object())
    throw invalid_record(std::string("invalid record: expected an object, got ") + j.type_name());
  r.name = detail::text_field(j, "name", true);
  r.version = detail::text_field(j, "version", false);
  r.section = detail::text_field(j, "section", false);
  r.maintainer = detail::text_field(j, "maintainer", false);
  r.description = detail::text_field(j, "description", false);
}

inline void to_json(nlohmann::json& j, const search_hit& h) {
  j = {{"name", h.name},
       {"version", h.version},
       {"section", h.section},
       {"snippet", h.snippet},
       {"score", h.score}};
}

inline void to_json(nlohmann::json& j, const sync_counts& c) {
  j = {{"added", c.added}, {"updated", c.updated}, {"deleted", c.deleted}, {"unchanged", c.unchanged}};
}

} // namespace catalog

#endif // CATALOG_JSON_HPP
