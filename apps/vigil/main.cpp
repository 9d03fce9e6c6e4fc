// vigil: licence plates from photos, video and cameras, checked against a vignette registry.
#include <iostream>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "cli.hpp"
#include "vigil/common.hpp"

int main(int argc, char** argv) {
  vigil::keep_freed_memory();
  CLI::App app{"Vigil: reads licence plates from photos and video"};
  app.set_version_flag("--version", std::string("vigil ") + vigil::version());
  app.require_subcommand(1);
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "Log debug messages");
  int exit_code = 0;
  vigil::cli::register_read(app, exit_code);
  vigil::cli::register_bench(app, exit_code);
  vigil::cli::register_watch(app, exit_code);
  vigil::cli::register_serve(app, exit_code);
  app.parse_complete_callback([&] { spdlog::set_level(verbose ? spdlog::level::debug : spdlog::level::warn); });
  // Messages go to stderr: stdout carries results (JSON Lines) that other programs read.
  spdlog::set_default_logger(spdlog::stderr_color_mt("vigil"));
  spdlog::set_pattern("vigil: %l: %v");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // A mistyped command ("vigil raed x.jpg") is left over unparsed and CLI11 only says a subcommand is
    // required.
    if (dynamic_cast<const CLI::RequiredError*>(&e) && app.get_subcommands().empty() &&
        !app.remaining().empty()) {
      std::cerr << "vigil: unknown command or option '" << app.remaining().front()
                << "' (commands: read, bench, watch, serve)\nRun with --help for more information.\n";
      return 2;
    }
    return app.exit(e) == 0 ? 0 : 2;
  }
  return exit_code;
}
