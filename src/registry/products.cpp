// Vignette products (configuration) and the validity they give.
#include <nlohmann/json.hpp>
#include <set>

#include "vigil/registry.hpp"

namespace vigil {

ProductCatalog ProductCatalog::czech() {
  ProductCatalog c;
  c.products = {{"cz-1d", "1-day", 1},
                {"cz-10d", "10-day", 10},
                {"cz-30d", "30-day", 30},
                {"cz-annual", "annual", 365}};
  // The built-in rule stands in when tzdata is missing, so this cannot fail.
  c.zone = TimeZone::load("Europe/Prague").value();
  return c;
}

Result<ProductCatalog> ProductCatalog::parse(const std::string& json_text, const std::string& zoneinfo_dir) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::parse_error& e) {
    return Error{std::string("products: not JSON: ") + e.what()};
  }
  if (!doc.is_object()) return Error{"products: expected an object with \"time_zone\" and \"products\""};
  for (const auto& [key, value] : doc.items())
    if (key != "time_zone" && key != "products")
      return Error{"products: unknown key '" + key + "' (expected time_zone, products)"};
  ProductCatalog c;
  if (!doc.contains("time_zone") || !doc["time_zone"].is_string())
    return Error{"products: \"time_zone\" must be a tz name like \"Europe/Prague\""};
  auto zone = TimeZone::load(doc["time_zone"].get<std::string>(), zoneinfo_dir);
  if (!zone) return Error{"products: " + zone.error()};
  c.zone = *zone;
  if (!doc.contains("products") || !doc["products"].is_array() || doc["products"].empty())
    return Error{"products: \"products\" must be a non-empty array"};
  std::set<std::string> seen;
  int i = 0;
  for (const auto& e : doc["products"]) {
    const std::string where = "products[" + std::to_string(i++) + "]";
    if (!e.is_object()) return Error{where + ": expected an object"};
    for (const auto& [key, value] : e.items())
      if (key != "id" && key != "name" && key != "days")
        return Error{where + ": unknown key '" + key + "' (expected id, name, days)"};
    Product p;
    if (!e.contains("id") || !e["id"].is_string()) return Error{where + ": \"id\" must be a string"};
    p.id = e["id"].get<std::string>();
    if (p.id.empty() || p.id.size() > 32 ||
        p.id.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") != std::string::npos)
      return Error{where + ": id '" + p.id + "' must be 1..32 of a-z 0-9 _ -"};
    if (!seen.insert(p.id).second) return Error{where + ": duplicate id '" + p.id + "'"};
    if (e.contains("name") && !e["name"].is_string()) return Error{where + ": \"name\" must be a string"};
    p.name = e.contains("name") ? e["name"].get<std::string>() : p.id;
    if (!e.contains("days") || !e["days"].is_number_integer() || e["days"].get<long long>() < 1 ||
        e["days"].get<long long>() > 3660)
      return Error{where + ": \"days\" must be an integer 1..3660"};
    p.days = e["days"].get<int>();
    c.products.push_back(std::move(p));
  }
  return c;
}

const Product* ProductCatalog::find(const std::string& id) const {
  for (const auto& p : products)
    if (p.id == id) return &p;
  return nullptr;
}

std::string ProductCatalog::ids() const {
  std::string s;
  for (const auto& p : products) s += (s.empty() ? "" : ", ") + p.id;
  return s;
}

std::pair<Timestamp, Timestamp> ProductCatalog::validity(const Product& product, Day start) const {
  const Day last_exclusive{std::chrono::sys_days{start} + std::chrono::days{product.days}};
  return {zone.start_of_day(start), zone.start_of_day(last_exclusive)};
}

const char* to_string(RecordKind kind) { return kind == RecordKind::kVignette ? "vignette" : "exemption"; }

const char* to_string(Verdict verdict) {
  switch (verdict) {
    case Verdict::kPaid:
      return "paid";
    case Verdict::kExempt:
      return "exempt";
    case Verdict::kUnpaid:
      return "unpaid";
    case Verdict::kReview:
      return "review";
  }
  return "review";
}

const char* to_string(Outcome outcome) {
  switch (outcome) {
    case Outcome::kPaid:
      return "paid";
    case Outcome::kExempt:
      return "exempt";
    case Outcome::kUnpaid:
      return "unpaid";
    case Outcome::kReview:
      return "review";
    case Outcome::kDismissed:
      return "dismissed";
  }
  return "review";
}

const char* to_string(Role role) {
  switch (role) {
    case Role::kCamera:
      return "camera";
    case Role::kShop:
      return "shop";
    case Role::kOperator:
      return "operator";
    case Role::kAdmin:
      return "admin";
  }
  return "operator";
}

std::optional<Role> parse_role(std::string_view text) {
  for (const Role r : {Role::kCamera, Role::kShop, Role::kOperator, Role::kAdmin})
    if (text == to_string(r)) return r;
  return std::nullopt;
}

}  // namespace vigil
