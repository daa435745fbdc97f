// SchemaMutator: makes the JSON values a schema rejects out of one it accepts, breaking one rule
// at a time, for contract tests of servers that must refuse them. From a valid value it derives:
//
//   - a value of the wrong type (null, and another scalar and container kind; 1.5 for an integer)
//   - for objects: each required property removed, an undeclared property added (when
//     additionalProperties is false), too few or too many properties, and every declared property
//     mutated in turn (one that is absent is first given a valid example value)
//   - for arrays: too few or too many items, the first item mutated
//   - for strings: too short, too long, strings that miss the pattern
//   - for numbers: below the minimum, above the maximum
//   - for enum and const: a value outside them
//
// Only the one spot changes, so each mutation is rejected for one reason (the caller should still
// check with the validator that it is: a oneOf may accept a value another branch refuses). The
// subset of schema keywords is JsonSchemaValidator's. Holds a reference to the validator.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "json_schema.h"

namespace herald::testing {

class SchemaMutator {
 public:
  struct Mutation {
    std::string what;  // where and which rule: "$.to.device: misses the pattern ..."
    boost::json::value value;
    bool over_size = false;  // longer than maxLength or maxItems allow (a server may say 413)
  };

  explicit SchemaMutator(const JsonSchemaValidator& schemas) : schemas_(schemas) {}

  // Values `schema` rejects, each `valid` with one thing broken; `at` names `valid`'s place in
  // messages. `valid` must be accepted by `schema`.
  [[nodiscard]] std::vector<Mutation> mutations(const boost::json::value& schema,
                                                const boost::json::value& valid,
                                                const std::string& at = "$") const {
    std::vector<Mutation> out;
    for (auto& wrong : wrong_types(schema, at == "$")) {
      out.push_back({at + ": " + boost::json::serialize(wrong) + " is of the wrong type", wrong});
    }
    breaking_rules(schema, valid, at, out);
    return out;
  }

  // A value `schema` accepts, made of plain samples ("phone-1", the minimum, one item, the
  // required properties), or nullopt when none of them fits.
  [[nodiscard]] std::optional<boost::json::value> example(const boost::json::value& schema) const {
    namespace json = boost::json;
    const json::value& resolved = schemas_.resolve(schema);
    if (!resolved.is_object()) return std::nullopt;
    const json::object& s = resolved.get_object();
    std::optional<json::value> out;
    for (const char* choice : {"oneOf", "anyOf"}) {
      if (const auto* branches = s.if_contains(choice)) {
        for (const auto& branch : branches->as_array()) {
          auto candidate = example(branch);
          if (candidate && schemas_.valid(schema, *candidate)) return candidate;
        }
        return std::nullopt;
      }
    }
    if (const auto* c = s.if_contains("const")) out = *c;
    if (const auto* e = s.if_contains("enum")) out = e->as_array().at(0);
    if (!out) {
      const auto types = kinds(schema);
      if (!types || types->empty()) return std::nullopt;
      // Null only when nothing else is allowed.
      std::string type;
      for (const char* t : {"object", "array", "string", "integer", "number", "boolean", "null"}) {
        if (types->contains(t)) {
          type = t;
          break;
        }
      }
      out = sample(s, type);
    }
    if (!out || !schemas_.valid(schema, *out)) return std::nullopt;
    return out;
  }

  // The type names `schema` allows, or nullopt when it allows any.
  [[nodiscard]] std::optional<std::set<std::string>> kinds(const boost::json::value& schema) const {
    const boost::json::value& resolved = schemas_.resolve(schema);
    if (!resolved.is_object()) return std::nullopt;
    const boost::json::object& s = resolved.get_object();
    if (const auto* type = s.if_contains("type")) {
      std::set<std::string> names;
      if (type->is_string()) {
        names.emplace(type->get_string());
      } else {
        for (const auto& t : type->as_array()) names.emplace(t.as_string());
      }
      return names;
    }
    for (const char* choice : {"oneOf", "anyOf"}) {
      if (const auto* branches = s.if_contains(choice)) {
        std::set<std::string> names;
        for (const auto& branch : branches->as_array()) {
          auto sub = kinds(branch);
          if (!sub) return std::nullopt;
          names.insert(sub->begin(), sub->end());
        }
        return names;
      }
    }
    if (const auto* all = s.if_contains("allOf")) {
      for (const auto& branch : all->as_array()) {
        if (auto sub = kinds(branch)) return sub;
      }
    }
    std::optional<std::set<std::string>> names;
    auto add = [&names](const boost::json::value& v) {
      if (!names) names.emplace();
      for (auto& n : JsonSchemaValidator::type_names(v)) names->insert(n);
    };
    if (const auto* c = s.if_contains("const")) add(*c);
    if (const auto* e = s.if_contains("enum")) {
      for (const auto& v : e->as_array()) add(v);
    }
    return names;
  }

 private:
  // Values of every JSON kind, one per kind, in the order they are tried.
  static std::vector<boost::json::value> kind_samples() {
    return {nullptr, "text", 12345, 1.5, true, boost::json::array{}, boost::json::object{}};
  }

  // Strings tried against a pattern: empty, blanks, separators, non-ASCII, wrong scheme, long.
  static std::vector<std::string> pattern_breakers() {
    return {"",         " ",
            "a b",      "x/y",
            "\xc3\xa9", "ftp://example.com/x",
            "\t",       "UPPERCASE",
            "a?b#c",    std::string(300, 'a')};
  }

  [[nodiscard]] std::vector<boost::json::value> wrong_types(const boost::json::value& schema,
                                                            bool every_kind) const {
    std::vector<boost::json::value> out;
    const auto allowed = kinds(schema);
    if (!allowed) return out;
    bool scalar = false;
    bool container = false;
    for (auto& candidate : kind_samples()) {
      bool fits = false;
      for (const auto& n : JsonSchemaValidator::type_names(candidate)) {
        fits = fits || allowed->contains(n);
      }
      if (fits) continue;
      // Beyond the root: null, one scalar, one container, and 1.5 where integers are expected.
      const bool is_container = candidate.is_array() || candidate.is_object();
      const bool fraction = candidate.is_double() && allowed->contains("integer");
      if (!every_kind && !candidate.is_null() && !fraction) {
        if (is_container ? container : scalar) continue;
      }
      if (!candidate.is_null()) (is_container ? container : scalar) = true;
      out.push_back(std::move(candidate));
    }
    return out;
  }

  // A sample of `type` meeting the simple constraints of `s`, or nullopt.
  [[nodiscard]] std::optional<boost::json::value> sample(const boost::json::object& s,
                                                         const std::string& type) const {
    namespace json = boost::json;
    if (type == "null") return json::value(nullptr);
    if (type == "boolean") return json::value(true);
    if (type == "string") {
      for (const char* text :
           {"phone-1", "a", "http://127.0.0.1:9/hooks/herald", "0123456789abcdef", "user-1"}) {
        const json::value candidate(text);
        if (schemas_.valid(json::value(s), candidate)) return candidate;
      }
      return std::nullopt;
    }
    if (type == "integer" || type == "number") {
      std::int64_t n = 1;
      if (const auto* min = s.if_contains("minimum")) n = min->to_number<std::int64_t>();
      if (const auto* max = s.if_contains("maximum"))
        n = std::min(n, max->to_number<std::int64_t>());
      return json::value(n);
    }
    if (type == "array") {
      std::size_t n = 1;
      if (const auto* min = s.if_contains("minItems")) {
        n = std::max<std::size_t>(1, min->to_number<std::size_t>());
      }
      const auto* items = s.if_contains("items");
      std::optional<json::value> item = items != nullptr ? example(*items) : json::value("a");
      if (!item) return std::nullopt;
      json::array out;
      for (std::size_t i = 0; i < n; ++i) out.push_back(*item);
      return json::value(std::move(out));
    }
    if (type == "object") {
      json::object out;
      const json::object* properties = nullptr;
      if (const auto* p = s.if_contains("properties")) properties = &p->as_object();
      auto add = [&](std::string_view name) {
        if (properties == nullptr || !properties->contains(name)) return false;
        auto value = example(properties->at(name));
        if (!value) return false;
        out[name] = std::move(*value);
        return true;
      };
      if (const auto* required = s.if_contains("required")) {
        for (const auto& name : required->as_array()) {
          if (!add(name.as_string())) return std::nullopt;
        }
      }
      std::size_t min = 0;
      if (const auto* m = s.if_contains("minProperties")) min = m->to_number<std::size_t>();
      if (properties != nullptr) {
        for (const auto& kv : *properties) {
          if (out.size() >= min) break;
          if (!out.contains(kv.key())) add(kv.key());
        }
      }
      return json::value(std::move(out));
    }
    return std::nullopt;
  }

  // Appends the mutations of `valid` that break a rule of `schema` other than its type.
  void breaking_rules(const boost::json::value& schema, const boost::json::value& valid,
                      const std::string& at, std::vector<Mutation>& out) const {
    namespace json = boost::json;
    const json::value& resolved = schemas_.resolve(schema);
    if (!resolved.is_object()) return;
    const json::object& s = resolved.get_object();
    // A choice: break the rules of the branch `valid` takes.
    for (const char* choice : {"oneOf", "anyOf"}) {
      if (const auto* branches = s.if_contains(choice)) {
        for (const auto& branch : branches->as_array()) {
          if (schemas_.valid(branch, valid)) {
            breaking_rules(branch, valid, at, out);
            break;
          }
        }
      }
    }
    if (const auto* all = s.if_contains("allOf")) {
      for (const auto& branch : all->as_array()) breaking_rules(branch, valid, at, out);
    }
    if (const auto* c = s.if_contains("const")) {
      if (c->is_string()) {
        out.push_back({at + ": not the const", json::value(std::string(c->as_string()) + "-not")});
      }
      if (c->is_bool()) out.push_back({at + ": not the const", !c->as_bool()});
    }
    if (const auto* e = s.if_contains("enum")) {
      json::value outside("not-one-of-the-enum");
      for (const auto& option : e->as_array()) {
        if (option.is_number()) outside = 987654321;
      }
      out.push_back({at + ": " + json::serialize(outside) + " is not in the enum", outside});
    }
    if (valid.is_string()) string_rules(s, valid.get_string(), at, out);
    if (valid.is_number()) {
      const bool integral = kinds(schema) && kinds(schema)->contains("integer");
      if (const auto* min = s.if_contains("minimum")) {
        json::value below = integral ? json::value(min->to_number<std::int64_t>() - 1)
                                     : json::value(min->to_number<double>() - 0.5);
        out.push_back({at + ": " + json::serialize(below) + " is below the minimum", below});
      }
      if (const auto* max = s.if_contains("maximum")) {
        json::value above = integral ? json::value(max->to_number<std::int64_t>() + 1)
                                     : json::value(max->to_number<double>() + 0.5);
        out.push_back({at + ": " + json::serialize(above) + " is above the maximum", above});
      }
    }
    if (valid.is_object()) object_rules(s, valid.get_object(), at, out);
    if (valid.is_array()) array_rules(s, valid.get_array(), at, out);
  }

  void string_rules(const boost::json::object& s, const boost::json::string& valid,
                    const std::string& at, std::vector<Mutation>& out) const {
    namespace json = boost::json;
    const std::string text(valid);
    if (const auto* min = s.if_contains("minLength")) {
      const auto n = min->to_number<std::size_t>();
      if (n > 0)
        out.push_back({at + ": shorter than minLength", json::string(text.substr(0, n - 1))});
    }
    if (const auto* max = s.if_contains("maxLength")) {
      const auto n = max->to_number<std::size_t>();
      std::string longer = text;
      while (JsonSchemaValidator::code_points(longer) <= n) longer.push_back('a');
      out.push_back(
          {at + ": longer than maxLength " + std::to_string(n), json::string(longer), true});
    }
    if (const auto* pattern = s.if_contains("pattern")) {
      for (const auto& breaker : pattern_breakers()) {
        if (schemas_.matches_pattern(pattern->as_string(), breaker)) continue;
        out.push_back({at + ": " + json::serialize(json::string(breaker)) + " misses the pattern " +
                           json::serialize(*pattern),
                       json::string(breaker)});
      }
    }
  }

  void object_rules(const boost::json::object& s, const boost::json::object& valid,
                    const std::string& at, std::vector<Mutation>& out) const {
    namespace json = boost::json;
    if (const auto* required = s.if_contains("required")) {
      for (const auto& name : required->as_array()) {
        json::object without = valid;
        without.erase(name.as_string());
        out.push_back({at + ": without the required '" + std::string(name.as_string()) + "'",
                       std::move(without)});
      }
    }
    const auto* additional = s.if_contains("additionalProperties");
    if (additional != nullptr && additional->is_bool() && !additional->get_bool()) {
      json::object with = valid;
      with["unexpected_property"] = true;
      out.push_back({at + ": with an undeclared property", std::move(with)});
    }
    const json::object* properties = nullptr;
    if (const auto* p = s.if_contains("properties")) properties = &p->as_object();
    if (const auto* min = s.if_contains("minProperties")) {
      const auto n = min->to_number<std::size_t>();
      if (n > 0) {
        json::object fewer;
        for (const auto& kv : valid) {
          if (fewer.size() + 1 < n) fewer[kv.key()] = kv.value();
        }
        out.push_back({at + ": fewer than minProperties", std::move(fewer)});
      }
    }
    std::optional<std::size_t> max_properties;
    if (const auto* max = s.if_contains("maxProperties")) {
      max_properties = max->to_number<std::size_t>();
      json::object more = valid;
      if (properties != nullptr) {
        for (const auto& kv : *properties) {
          if (more.size() > *max_properties) break;
          if (more.contains(kv.key())) continue;
          if (auto value = example(kv.value())) more[kv.key()] = std::move(*value);
        }
      }
      if (more.size() > *max_properties) {
        out.push_back({at + ": more than maxProperties", std::move(more)});
      }
    }
    if (properties == nullptr) return;
    for (const auto& [name, sub] : *properties) {
      const std::string where = at + "." + std::string(name);
      std::optional<json::value> value;
      if (const auto* present = valid.if_contains(name)) {
        value = *present;
      } else if (!max_properties || valid.size() < *max_properties) {
        value = example(sub);
      }
      if (!value) continue;
      for (auto& m : mutations(sub, *value, where)) {
        json::object changed = valid;
        changed[name] = std::move(m.value);
        out.push_back({std::move(m.what), std::move(changed), m.over_size});
      }
    }
  }

  void array_rules(const boost::json::object& s, const boost::json::array& valid,
                   const std::string& at, std::vector<Mutation>& out) const {
    namespace json = boost::json;
    if (const auto* min = s.if_contains("minItems")) {
      const auto n = min->to_number<std::size_t>();
      if (n > 0) {
        json::array fewer(valid.begin(), valid.begin() + static_cast<std::ptrdiff_t>(
                                                             std::min(valid.size(), n - 1)));
        out.push_back({at + ": fewer than minItems", std::move(fewer)});
      }
    }
    const auto* items = s.if_contains("items");
    std::optional<json::value> item;
    if (!valid.empty()) {
      item = valid.front();
    } else if (items != nullptr) {
      item = example(*items);
    }
    if (const auto* max = s.if_contains("maxItems"); max != nullptr && item) {
      json::array more = valid;
      while (more.size() <= max->to_number<std::size_t>()) more.push_back(*item);
      out.push_back({at + ": more than maxItems", std::move(more), true});
    }
    if (items != nullptr && !valid.empty()) {
      for (auto& m : mutations(*items, valid.front(), at + "[0]")) {
        json::array changed = valid;
        changed[0] = std::move(m.value);
        out.push_back({std::move(m.what), std::move(changed), m.over_size});
      }
    }
  }

  const JsonSchemaValidator& schemas_;
};

}  // namespace herald::testing
