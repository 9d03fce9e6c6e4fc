// vigil serve: the vignette registry's HTTP API; `vigil serve token ...` manages its bearer tokens.
#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli.hpp"

#if VIGIL_HAVE_SERVER
#include "vigil/recognizer.hpp"
#include "vigil/registry.hpp"
#include "vigil/server.hpp"
#endif

namespace fs = std::filesystem;

namespace vigil::cli {

#if VIGIL_HAVE_SERVER
namespace {

struct ServeFlags {
  std::string db, data_dir, bind = "127.0.0.1", formats, products, web_dir;
  int port = 8080, threads = ServerOptions{}.threads;
  float review_confidence = -1.0f;
  // token subcommands
  std::string role, camera, note;
  std::int64_t token_id = 0;
};

// $XDG_DATA_HOME/vigil, else ~/.local/share/vigil.
std::string default_data_dir() {
  if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x) return std::string(x) + "/vigil";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.local/share/vigil";
  return "vigil-data";
}

// The database the flags name: --db, else vigil.db in --data-dir (created when missing).
Result<std::string> database(const ServeFlags& f) {
  if (!f.db.empty()) return f.db;
  const std::string dir = f.data_dir.empty() ? default_data_dir() : f.data_dir;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Error{"cannot create the data folder " + dir + ": " + ec.message() + " (pass --db FILE)"};
  return (fs::path(dir) / "vigil.db").string();
}

Result<RegistryOptions> registry_options(const ServeFlags& f) {
  RegistryOptions o;
  if (!f.products.empty()) {
    std::ifstream in(f.products);
    if (!in) return Error{"cannot open products file " + f.products};
    std::stringstream ss;
    ss << in.rdbuf();
    auto c = ProductCatalog::parse(ss.str());
    if (!c) return Error{f.products + ": " + c.error()};
    o.catalog = *c;
  }
  std::string formats = f.formats;
  if (formats.empty()) {
    const std::string dir = find_data_dir();
    for (const auto& p :
         {fs::path(dir) / "plate_formats.json", fs::path(dir) / "data" / "plate_formats.json"})
      if (!dir.empty() && fs::exists(p)) {
        formats = p.string();
        break;
      }
  }
  if (!formats.empty()) {
    auto set = FormatSet::load(formats);
    if (!set) return Error{set.error()};
    o.formats = std::make_shared<const FormatSet>(std::move(*set));
  } else {
    std::cerr << "vigil: warning: plate_formats.json not found; plates are not checked against formats "
                 "(pass --formats FILE)\n";
  }
  if (f.review_confidence >= 0.0f) o.decision.review_confidence_min = f.review_confidence;
  return o;
}

// The dashboard's files: --web-dir, else web/ in the data folder (next to the models). "" when not found.
Result<std::string> find_web_dir(const ServeFlags& f) {
  std::error_code ec;
  if (!f.web_dir.empty()) {
    if (!fs::exists(fs::path(f.web_dir) / "index.html", ec))
      return Error{"--web-dir " + f.web_dir +
                   " has no index.html (pass the web/ folder of the vigil sources)"};
    return fs::absolute(f.web_dir, ec).lexically_normal().string();
  }
  const std::string dir = find_data_dir();
  if (!dir.empty() && fs::exists(fs::path(dir) / "web" / "index.html", ec))
    return (fs::path(dir) / "web").string();
  return std::string();
}

Result<Registry> open_registry(const ServeFlags& f, std::string* path_out = nullptr) {
  auto path = database(f);
  if (!path) return Error{path.error()};
  auto opt = registry_options(f);
  if (!opt) return Error{opt.error()};
  if (path_out) *path_out = *path;
  return Registry::open(*path, std::move(*opt));
}

int serve(const ServeFlags& f) {
  auto web = find_web_dir(f);
  if (!web) {
    std::cerr << "vigil: " << web.error() << "\n";
    return 2;
  }
  std::string path;
  auto reg = open_registry(f, &path);
  if (!reg) {
    std::cerr << "vigil: " << reg.error() << "\n";
    return 1;
  }
  auto registry = std::make_shared<Registry>(std::move(*reg));
  bool has_admin = false;
  if (auto tokens = registry->tokens())
    for (const auto& t : *tokens) has_admin = has_admin || (t.role == Role::kAdmin && !t.revoked);

  // Block the stop signals before the server's threads exist, so they inherit the mask and only
  // sigwait() below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  ServerOptions so;
  so.bind = f.bind;
  so.port = f.port;
  so.threads = f.threads;
  so.web_dir = *web;
  Server server(registry, so);
  auto port = server.start();
  if (!port) {
    std::cerr << "vigil: " << port.error() << "\n";
    return 1;
  }
  std::cout << "vigil: serving " << server.url() << " (" << registry->describe() << ")\n";
  if (web->empty())
    std::cerr << "vigil: warning: the dashboard's files (web/index.html) were not found next to the models; "
                 "the API works, / serves no dashboard (pass --web-dir DIR)\n";
  else
    std::cout << "vigil: dashboard " << server.url() << "/ (sign in with a token; files from " << *web
              << ")\n";
  if (!has_admin)
    std::cout << "vigil: no admin token yet; create one (it is printed once) with:\n"
              << "  vigil serve token create --role admin --db " << redact_database_url(path) << "\n";
  if (!has_admin && !web->empty())
    std::cout << "  then sign in at " << server.url() << "/ with it; its Tokens page makes the others\n";
  std::cout.flush();
  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::cerr << "vigil: stopping (" << (sig == SIGINT ? "SIGINT" : "SIGTERM") << ")\n";
  server.stop();
  return 0;
}

int token_create(const ServeFlags& f) {
  const auto role = parse_role(f.role);
  if (!role) {
    std::cerr << "vigil: --role '" << f.role << "' unknown (camera, shop, operator, admin)\n";
    return 2;
  }
  auto reg = open_registry(f);
  if (!reg) {
    std::cerr << "vigil: " << reg.error() << "\n";
    return 1;
  }
  auto t = reg->create_token(*role, f.camera, f.note);
  if (!t) {
    std::cerr << "vigil: " << t.error() << "\n";
    return t.failure() == Failure::kInvalid ? 2 : 1;
  }
  std::cout << t->token << "\n";
  std::cerr << "vigil: token #" << t->info.id << " (" << to_string(*role)
            << (f.camera.empty() ? "" : " for camera " + f.camera)
            << ") created; this is the only time it is shown\n";
  return 0;
}

int token_list(const ServeFlags& f) {
  auto reg = open_registry(f);
  if (!reg) {
    std::cerr << "vigil: " << reg.error() << "\n";
    return 1;
  }
  auto tokens = reg->tokens();
  if (!tokens) {
    std::cerr << "vigil: " << tokens.error() << "\n";
    return 1;
  }
  for (const auto& t : *tokens)
    std::cout << t.id << "\t" << to_string(t.role) << "\t" << (t.camera_id.empty() ? "-" : t.camera_id)
              << "\t" << format_timestamp(t.created) << "\t"
              << (t.revoked ? "revoked " + format_timestamp(*t.revoked) : "live") << "\t" << t.note << "\n";
  return 0;
}

int token_revoke(const ServeFlags& f) {
  auto reg = open_registry(f);
  if (!reg) {
    std::cerr << "vigil: " << reg.error() << "\n";
    return 1;
  }
  auto t = reg->revoke_token(f.token_id);
  if (!t) {
    std::cerr << "vigil: " << t.error() << "\n";
    return 1;
  }
  std::cerr << "vigil: token #" << t->id << " revoked\n";
  return 0;
}

void add_db_flags(CLI::App& app, ServeFlags& f) {
  app.add_option(
      "--db", f.db,
      "Database: a SQLite file, or postgresql://USER@HOST[:PORT]/DBNAME for an existing PostgreSQL "
      "database several servers may share (password from PGPASSWORD or ~/.pgpass). Created or "
      "migrated on first start");
  app.add_option("--data-dir", f.data_dir,
                 "Folder for vigil.db when --db is not given (default $XDG_DATA_HOME/vigil)");
  app.add_option("--formats", f.formats, "plate_formats.json (default: the one next to the models)");
  app.add_option("--products", f.products, "Products JSON (default: Czech vignettes, Europe/Prague)");
}

}  // namespace

void register_serve(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<ServeFlags>();
  auto* serve_cmd = app.add_subcommand("serve", "Run the vignette registry's HTTP API");
  add_db_flags(*serve_cmd, *flags);
  serve_cmd->add_option("--port", flags->port, "TCP port (0: any free port)")->check(CLI::Range(0, 65535));
  serve_cmd->add_option("--bind", flags->bind, "Address to listen on (0.0.0.0: every interface)");
  serve_cmd->add_option("--threads", flags->threads,
                        "Request worker threads: each connection holds one while its request comes in, so "
                        "slow clients take them (docs/security.md)")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  serve_cmd->add_option("--web-dir", flags->web_dir,
                        "The dashboard's files (default: web/ next to the models)");
  serve_cmd
      ->add_option("--review-confidence", flags->review_confidence,
                   "Reads below this confidence go to review, never unpaid (default 0.6)")
      ->check(CLI::Range(0.0, 1.0));
  serve_cmd->require_subcommand(0, 1);

  auto* token = serve_cmd->add_subcommand("token", "Create, list and revoke bearer tokens");
  token->require_subcommand(1);
  auto* create = token->add_subcommand("create", "Create a token and print it (shown only once)");
  create->add_option("--role", flags->role, "camera, shop, operator or admin")->required();
  create->add_option("--camera", flags->camera, "Camera id (camera tokens only)");
  create->add_option("--note", flags->note, "Free text (who holds it)");
  add_db_flags(*create, *flags);
  create->callback([flags, &exit_code] { exit_code = token_create(*flags); });
  auto* list = token->add_subcommand("list", "List tokens (never their secrets)");
  add_db_flags(*list, *flags);
  list->callback([flags, &exit_code] { exit_code = token_list(*flags); });
  auto* revoke = token->add_subcommand("revoke", "Revoke a token by id");
  revoke->add_option("id", flags->token_id, "Token id (from token list)")->required();
  add_db_flags(*revoke, *flags);
  revoke->callback([flags, &exit_code] { exit_code = token_revoke(*flags); });

  serve_cmd->callback([flags, token, &exit_code] {
    if (token->parsed()) return;
    exit_code = serve(*flags);
  });
}

#else

void register_serve(CLI::App& app, int& exit_code) {
  auto* serve_cmd = app.add_subcommand("serve", "Run the vignette registry's HTTP API (not built in)");
  serve_cmd->allow_extras();
  serve_cmd->callback([&exit_code] {
    std::cerr << "vigil: this vigil was built without the registry server (it needs SQLite, OpenSSL and "
                 "cpp-httplib: install libsqlite3-dev libssl-dev libcpp-httplib-dev and rebuild)\n";
    exit_code = 2;
  });
}

#endif

}  // namespace vigil::cli
