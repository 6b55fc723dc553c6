// catalog/json.hpp - nlohmann::json conversions for the catalogue's types.
// Distributed under the Boost Software License, Version 1.0.
#ifndef CATALOG_JSON_HPP
#define CATALOG_JSON_HPP

#include "catalog/record.hpp"

#include <nlohmann/json.hpp>

namespace catalog {

// Found by argument-dependent lookup: `nlohmann::json j = record; j.get<catalog_record>()`.

inline void to_json(nlohmann::json& j, const catalog_record& r) {
  j = {{"name", r.name},
       {"version", r.version},
       {"section", r.section},
       {"maintainer", r.maintainer},
       {"description", r.description}};
}

/// Missing fields other than "name" read as empty; a missing name throws nlohmann::json's error.
inline void from_json(const nlohmann::json& j, catalog_record& r) {
  r.name = j.at("name").get<std::string>();
  r.version = j.value("version", "");
  r.section = j.value("section", "");
  r.maintainer = j.value("maintainer", "");
  r.description = j.value("description", "");
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
