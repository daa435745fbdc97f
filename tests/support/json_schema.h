// JsonSchemaValidator: checks JSON values against the part of JSON Schema 2020-12 (the dialect of
// OpenAPI 3.1) that docs/api/openapi.yaml uses, for the contract test. Supported keywords:
//
//   $ref ("#/..." JSON pointers into the root document), allOf, anyOf, oneOf
//   type (a name or a list of names; "integer" accepts 3 and 3.0), const, enum
//   properties, required, additionalProperties (false or a schema), minProperties, maxProperties
//   items, minItems, maxItems
//   minLength, maxLength (in code points), pattern (ECMAScript, unanchored like JSON Schema's)
//   minimum, maximum
//
// Annotations (description, summary, title, example, examples, default) are ignored. Any other
// keyword is reported as an error rather than skipped, so that a document using a constraint this
// validator does not know fails loudly instead of passing unchecked.
//
// Holds a reference to the root document, which must outlive it. Not thread-safe (it caches
// compiled patterns).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

namespace herald::testing {

class JsonSchemaValidator {
 public:
  explicit JsonSchemaValidator(const boost::json::value& root) : root_(root) {}

  // Every way `instance` breaks `schema`, each starting with where ("$.to.device: ..."); empty
  // when it is valid. A $ref that does not resolve or an unsupported keyword is an error too.
  [[nodiscard]] std::vector<std::string> errors(const boost::json::value& schema,
                                                const boost::json::value& instance) const {
    std::vector<std::string> out;
    check(schema, instance, "$", out);
    return out;
  }
  [[nodiscard]] bool valid(const boost::json::value& schema,
                           const boost::json::value& instance) const {
    return errors(schema, instance).empty();
  }

  // The keywords of `schema` and of every schema inside it that this validator does not know,
  // each as "<at>/<keyword>" (references are not followed: walk their targets separately).
  [[nodiscard]] static std::vector<std::string> unsupported_keywords(
      const boost::json::value& schema, const std::string& at) {
    std::vector<std::string> out;
    if (!schema.is_object()) return out;
    for (const auto& [key, rule] : schema.get_object()) {
      const std::string where = at + "/" + std::string(key);
      auto walk = [&out](const boost::json::value& sub, const std::string& sub_at) {
        for (auto& u : unsupported_keywords(sub, sub_at)) out.push_back(std::move(u));
      };
      if (key == "properties") {
        for (const auto& [name, sub] : rule.as_object()) walk(sub, where + "/" + std::string(name));
      } else if (key == "allOf" || key == "anyOf" || key == "oneOf") {
        std::size_t i = 0;
        for (const auto& sub : rule.as_array()) walk(sub, where + "/" + std::to_string(i++));
      } else if (key == "items" || key == "additionalProperties") {
        walk(rule, where);
      } else if (!kKeywords.contains(std::string(key)) && !annotation(key)) {
        out.push_back(where);
      }
    }
    return out;
  }

  // The value a "#/a/b" reference points at, or nullptr.
  [[nodiscard]] const boost::json::value* find_ref(std::string_view ref) const {
    if (!ref.starts_with("#")) return nullptr;
    boost::system::error_code ec;
    const boost::json::value* found = root_.find_pointer(ref.substr(1), ec);
    return ec ? nullptr : found;
  }

  // `schema` with every top-level $ref followed (a schema holding only a $ref stands for its
  // target). A dangling reference resolves to the reference itself.
  [[nodiscard]] const boost::json::value& resolve(const boost::json::value& schema) const {
    const boost::json::value* s = &schema;
    for (int depth = 0; depth < 32 && s->is_object(); ++depth) {
      const auto* ref = s->as_object().if_contains("$ref");
      if (ref == nullptr || !ref->is_string()) break;
      const boost::json::value* target = find_ref(ref->as_string());
      if (target == nullptr) break;
      s = target;
    }
    return *s;
  }

  // The JSON type names an instance has: "integer" values are also "number".
  [[nodiscard]] static std::set<std::string> type_names(const boost::json::value& v) {
    switch (v.kind()) {
      case boost::json::kind::null:
        return {"null"};
      case boost::json::kind::bool_:
        return {"boolean"};
      case boost::json::kind::int64:
      case boost::json::kind::uint64:
        return {"integer", "number"};
      case boost::json::kind::double_: {
        const double d = v.get_double();
        if (d == static_cast<double>(static_cast<std::int64_t>(d))) return {"integer", "number"};
        return {"number"};
      }
      case boost::json::kind::string:
        return {"string"};
      case boost::json::kind::array:
        return {"array"};
      case boost::json::kind::object:
        return {"object"};
    }
    return {};
  }

  // Code points of a UTF-8 string (JSON Schema lengths count characters, not bytes).
  [[nodiscard]] static std::size_t code_points(std::string_view s) {
    std::size_t n = 0;
    for (const char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
    return n;
  }

  [[nodiscard]] bool matches_pattern(std::string_view pattern, std::string_view text) const {
    auto it = patterns_.find(std::string(pattern));
    if (it == patterns_.end()) {
      it = patterns_.emplace(std::string(pattern), std::regex(std::string(pattern))).first;
    }
    return std::regex_search(text.begin(), text.end(), it->second);
  }

 private:
  // The validation keywords check() implements (beside the applicators walked above).
  static inline const std::set<std::string> kKeywords = {
      "$ref",          "type",          "const",    "enum",     "required",
      "minProperties", "maxProperties", "minItems", "maxItems", "minLength",
      "maxLength",     "pattern",       "minimum",  "maximum"};

  static double number_of(const boost::json::value& v) { return v.to_number<double>(); }

  void check(const boost::json::value& schema, const boost::json::value& v, const std::string& at,
             std::vector<std::string>& out) const {
    namespace json = boost::json;
    if (schema.is_bool()) {
      if (!schema.get_bool()) out.push_back(at + ": nothing is allowed here");
      return;
    }
    if (!schema.is_object()) {
      out.push_back(at + ": the schema is not an object");
      return;
    }
    const json::object& s = schema.get_object();
    for (const auto& [key, rule] : s) {
      if (key == "$ref") {
        const json::value* target = rule.is_string() ? find_ref(rule.get_string()) : nullptr;
        if (target == nullptr) {
          out.push_back(at + ": unresolved $ref " + json::serialize(rule));
        } else {
          check(*target, v, at, out);
        }
      } else if (key == "allOf") {
        for (const auto& sub : rule.as_array()) check(sub, v, at, out);
      } else if (key == "anyOf" || key == "oneOf") {
        std::size_t passed = 0;
        for (const auto& sub : rule.as_array()) passed += valid_at(sub, v, at) ? 1 : 0;
        if (key == "anyOf" && passed == 0) out.push_back(at + ": matches no anyOf branch");
        if (key == "oneOf" && passed != 1) {
          out.push_back(at + ": matches " + std::to_string(passed) +
                        " oneOf branches instead of exactly one");
        }
      } else if (key == "type") {
        const auto names = type_names(v);
        bool ok = false;
        if (rule.is_string()) {
          ok = names.contains(std::string(rule.get_string()));
        } else {
          for (const auto& t : rule.as_array()) {
            ok = ok || names.contains(std::string(t.as_string()));
          }
        }
        if (!ok) out.push_back(at + ": " + json::serialize(v) + " is not " + json::serialize(rule));
      } else if (key == "const") {
        if (!same(v, rule)) out.push_back(at + ": must be " + json::serialize(rule));
      } else if (key == "enum") {
        bool ok = false;
        for (const auto& option : rule.as_array()) ok = ok || same(v, option);
        if (!ok) {
          out.push_back(at + ": " + json::serialize(v) + " is not one of " + json::serialize(rule));
        }
      } else if (key == "properties") {
        if (!v.is_object()) continue;
        for (const auto& [name, sub] : rule.as_object()) {
          if (const auto* p = v.get_object().if_contains(name)) {
            check(sub, *p, at + "." + std::string(name), out);
          }
        }
      } else if (key == "required") {
        if (!v.is_object()) continue;
        for (const auto& name : rule.as_array()) {
          if (!v.get_object().contains(name.as_string())) {
            out.push_back(at + ": missing required property '" + std::string(name.as_string()) +
                          "'");
          }
        }
      } else if (key == "additionalProperties") {
        if (!v.is_object()) continue;
        const json::object* declared = nullptr;
        if (const auto* p = s.if_contains("properties")) declared = &p->as_object();
        for (const auto& [name, value] : v.get_object()) {
          if (declared != nullptr && declared->contains(name)) continue;
          check(rule, value, at + "." + std::string(name), out);
        }
      } else if (key == "minProperties" || key == "maxProperties") {
        if (!v.is_object()) continue;
        const auto n = static_cast<std::int64_t>(v.get_object().size());
        const auto bound = rule.to_number<std::int64_t>();
        if (key == "minProperties" ? n < bound : n > bound) {
          out.push_back(at + ": " + std::to_string(n) + " properties breaks " + std::string(key) +
                        " " + std::to_string(bound));
        }
      } else if (key == "items") {
        if (!v.is_array()) continue;
        std::size_t i = 0;
        for (const auto& item : v.get_array()) {
          check(rule, item, at + "[" + std::to_string(i++) + "]", out);
        }
      } else if (key == "minItems" || key == "maxItems") {
        if (!v.is_array()) continue;
        const auto n = static_cast<std::int64_t>(v.get_array().size());
        const auto bound = rule.to_number<std::int64_t>();
        if (key == "minItems" ? n < bound : n > bound) {
          out.push_back(at + ": " + std::to_string(n) + " items breaks " + std::string(key) + " " +
                        std::to_string(bound));
        }
      } else if (key == "minLength" || key == "maxLength") {
        if (!v.is_string()) continue;
        const auto n = static_cast<std::int64_t>(code_points(v.get_string()));
        const auto bound = rule.to_number<std::int64_t>();
        if (key == "minLength" ? n < bound : n > bound) {
          out.push_back(at + ": length " + std::to_string(n) + " breaks " + std::string(key) + " " +
                        std::to_string(bound));
        }
      } else if (key == "pattern") {
        if (!v.is_string()) continue;
        if (!matches_pattern(rule.as_string(), v.get_string())) {
          out.push_back(at + ": " + json::serialize(v) + " does not match " +
                        json::serialize(rule));
        }
      } else if (key == "minimum" || key == "maximum") {
        if (!v.is_number()) continue;
        const double d = number_of(v);
        const double bound = number_of(rule);
        if (key == "minimum" ? d < bound : d > bound) {
          out.push_back(at + ": " + json::serialize(v) + " breaks " + std::string(key) + " " +
                        json::serialize(rule));
        }
      } else if (!annotation(key)) {
        out.push_back(at + ": unsupported schema keyword '" + std::string(key) + "'");
      }
    }
  }

  [[nodiscard]] bool valid_at(const boost::json::value& schema, const boost::json::value& v,
                              const std::string& at) const {
    std::vector<std::string> sub;
    check(schema, v, at, sub);
    return sub.empty();
  }

  // JSON equality, numbers by value (1 == 1.0).
  static bool same(const boost::json::value& a, const boost::json::value& b) {
    if (a.is_number() && b.is_number()) return number_of(a) == number_of(b);
    return a == b;
  }

  static bool annotation(std::string_view key) {
    return key == "description" || key == "summary" || key == "title" || key == "example" ||
           key == "examples" || key == "default";
  }

  const boost::json::value& root_;
  mutable std::map<std::string, std::regex> patterns_;
};

}  // namespace herald::testing
