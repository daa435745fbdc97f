// OpenApiDocument: an OpenAPI 3.1 document (docs/api/openapi.yaml) read with yaml-cpp and held as
// JSON, so that its schemas and the bodies they describe are the same kind of value. Lists the
// operations (path + method) with what a test needs to call them: the effective security, the
// parameters (path-level ones merged with the operation's), the request body schema and the
// documented responses, $refs followed.
//
// YAML scalars become JSON by the YAML 1.2 core schema: a plain scalar is null, a boolean, an
// integer or a float when it reads as one, else a string; a quoted scalar is always a string
// (`type: "null"` is the string "null"). Throws std::runtime_error when the file cannot be read
// or parsed. Immutable after construction; safe to share between threads.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "json_schema.h"

namespace herald::testing {

// YAML, converted as the header says.
inline boost::json::value yaml_to_json(const YAML::Node& node) {
  namespace json = boost::json;
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return nullptr;
    case YAML::NodeType::Sequence: {
      json::array out;
      for (const auto& item : node) out.push_back(yaml_to_json(item));
      return out;
    }
    case YAML::NodeType::Map: {
      json::object out;
      for (const auto& kv : node) out[kv.first.as<std::string>()] = yaml_to_json(kv.second);
      return out;
    }
    case YAML::NodeType::Scalar:
      break;
  }
  const std::string& text = node.Scalar();
  if (node.Tag() != "?") return json::string(text);  // quoted, or explicitly tagged
  if (text == "~" || text == "null" || text == "Null" || text == "NULL") return nullptr;
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  const char* end = text.data() + text.size();
  std::int64_t i = 0;
  if (auto [p, ec] = std::from_chars(text.data(), end, i); ec == std::errc() && p == end) return i;
  double d = 0;
  if (auto [p, ec] = std::from_chars(text.data(), end, d); ec == std::errc() && p == end) return d;
  return json::string(text);
}

class OpenApiDocument {
 public:
  struct Parameter {
    std::string name;
    std::string in;  // path, query, header
    bool required = false;
    boost::json::value schema;
  };

  struct Response {
    boost::json::value schema;  // null when the response has no application/json content
    std::vector<std::string> headers;
  };

  struct Operation {
    std::string path;    // "/v1/apps/{app}/messages"
    std::string method;  // lowercase, as in the document: "get", "post", ...
    std::string operation_id;
    // Names of the security schemes the caller must present: empty = none (`security: []`).
    std::vector<std::string> security;
    std::vector<Parameter> parameters;
    bool body_required = false;
    boost::json::value body_schema;             // the application/json request schema, or null
    std::map<std::string, Response> responses;  // by status ("200", "404", ...)

    [[nodiscard]] bool has_body() const { return !body_schema.is_null(); }
    // "GET /v1/apps/{app}/messages/{id}", for messages.
    [[nodiscard]] std::string title() const {
      std::string upper;
      for (const char c : method) upper.push_back(static_cast<char>(std::toupper(c)));
      return upper + " " + path;
    }
  };

  explicit OpenApiDocument(const std::filesystem::path& file) : root_(load(file)), schemas_(root_) {
    load_operations();
  }
  // The validator refers to root_: the document stays where it was made.
  OpenApiDocument(const OpenApiDocument&) = delete;
  OpenApiDocument& operator=(const OpenApiDocument&) = delete;

  [[nodiscard]] const boost::json::value& root() const { return root_; }
  [[nodiscard]] const std::vector<Operation>& operations() const { return operations_; }
  // The operation with this operationId, or nullptr.
  [[nodiscard]] const Operation* find(std::string_view operation_id) const {
    for (const auto& op : operations_) {
      if (op.operation_id == operation_id) return &op;
    }
    return nullptr;
  }
  // A validator resolving $refs in this document.
  [[nodiscard]] const JsonSchemaValidator& schemas() const { return schemas_; }

 private:
  static inline const std::set<std::string> kMethods = {"get",   "put",  "post",   "delete",
                                                        "patch", "head", "options"};

  void load_operations() {
    const auto& root = root_.as_object();
    std::vector<std::string> default_security = security_of(root.if_contains("security"));
    for (const auto& [path, item_value] : root.at("paths").as_object()) {
      const auto& item = item_value.as_object();
      for (const auto& [method, op_value] : item) {
        if (!kMethods.contains(std::string(method))) continue;
        const auto& op = op_value.as_object();
        Operation operation;
        operation.path = path;
        operation.method = method;
        operation.operation_id = op.at("operationId").as_string();
        operation.security =
            op.contains("security") ? security_of(op.if_contains("security")) : default_security;
        add_parameters(item.if_contains("parameters"), operation.parameters);
        add_parameters(op.if_contains("parameters"), operation.parameters);
        if (const auto* body = op.if_contains("requestBody")) {
          const auto& b = schemas_.resolve(*body).as_object();
          operation.body_required = b.contains("required") && b.at("required").as_bool();
          operation.body_schema = json_schema_of(b);
        }
        for (const auto& [status, response_value] : op.at("responses").as_object()) {
          const auto& r = schemas_.resolve(response_value).as_object();
          Response response;
          response.schema = json_schema_of(r);
          if (const auto* headers = r.if_contains("headers")) {
            for (const auto& h : headers->as_object()) response.headers.emplace_back(h.key());
          }
          operation.responses.emplace(status, std::move(response));
        }
        operations_.push_back(std::move(operation));
      }
    }
  }

  static boost::json::value load(const std::filesystem::path& file) {
    try {
      return yaml_to_json(YAML::LoadFile(file.string()));
    } catch (const YAML::Exception& e) {
      throw std::runtime_error(file.string() + ": " + e.what());
    }
  }

  static std::vector<std::string> security_of(const boost::json::value* requirements) {
    std::vector<std::string> names;
    if (requirements == nullptr) return names;
    for (const auto& requirement : requirements->as_array()) {
      for (const auto& scheme : requirement.as_object()) names.emplace_back(scheme.key());
    }
    return names;
  }

  // The application/json schema of a request body or response object, or null.
  static boost::json::value json_schema_of(const boost::json::object& with_content) {
    const auto* content = with_content.if_contains("content");
    if (content == nullptr) return nullptr;
    const auto* media = content->as_object().if_contains("application/json");
    if (media == nullptr) return nullptr;
    const auto* schema = media->as_object().if_contains("schema");
    return schema != nullptr ? *schema : boost::json::value(boost::json::object{});
  }

  // Appends `list`'s parameters; one with the name and location of an earlier one replaces it.
  void add_parameters(const boost::json::value* list, std::vector<Parameter>& out) const {
    if (list == nullptr) return;
    for (const auto& entry : list->as_array()) {
      const auto& p = schemas_.resolve(entry).as_object();
      Parameter parameter;
      parameter.name = p.at("name").as_string();
      parameter.in = p.at("in").as_string();
      parameter.required = p.contains("required") && p.at("required").as_bool();
      if (const auto* schema = p.if_contains("schema")) parameter.schema = *schema;
      std::erase_if(out, [&](const Parameter& q) {
        return q.name == parameter.name && q.in == parameter.in;
      });
      out.push_back(std::move(parameter));
    }
  }

  boost::json::value root_;
  JsonSchemaValidator schemas_;
  std::vector<Operation> operations_;
};

}  // namespace herald::testing
