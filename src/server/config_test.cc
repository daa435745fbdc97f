#include "server/config.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include <gtest/gtest.h>

namespace herald::server {
namespace {

Config load(std::vector<std::string> args) {
  std::vector<const char*> argv = {"heraldd"};
  for (const auto& a : args) argv.push_back(a.c_str());
  bool help = false;
  std::string text;
  return load_config(static_cast<int>(argv.size()), argv.data(), help, text);
}

std::string error_of(std::vector<std::string> args) {
  try {
    load(std::move(args));
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

std::filesystem::path write_file(const std::string& name, const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() / name;
  std::ofstream(path) << text;
  return path;
}

TEST(Config, DefaultsNeedNoFile) {
  const Config c = load({});
  EXPECT_EQ(c.access.listen_port, 7700);
  EXPECT_EQ(c.http.listen_port, 7780);
  EXPECT_EQ(c.storage.durability, "sync");
  EXPECT_TRUE(c.apps.empty());
}

TEST(Config, FileSettingsAreRead) {
  const auto path = write_file("herald-config-test.toml", R"(
data_dir = "/var/lib/herald"
[access]
listen = "127.0.0.1:9000"
heartbeat_max_s = 900
[storage]
durability = "fast"
[[apps]]
id = "news"
keys = ["news-key-0123456789"]
)");
  const Config c = load({"--config", path.string()});
  EXPECT_EQ(c.data_dir, "/var/lib/herald");
  EXPECT_EQ(c.access.listen_address, "127.0.0.1");
  EXPECT_EQ(c.access.listen_port, 9000);
  EXPECT_EQ(c.access.heartbeat_max_s, 900u);
  EXPECT_EQ(c.storage.durability, "fast");
  ASSERT_EQ(c.apps.size(), 1u);
  EXPECT_EQ(c.apps[0].id, "news");
}

TEST(Config, FlagsOverrideTheFileWhereverTheyStand) {
  const auto path =
      write_file("herald-config-test2.toml", "[access]\nlisten = \"127.0.0.1:9000\"\n");
  const Config c = load({"--access.listen=0.0.0.0:9100", "--config", path.string()});
  EXPECT_EQ(c.access.listen_port, 9100);
  EXPECT_EQ(c.access.listen_address, "0.0.0.0");
}

TEST(Config, ErrorsNameTheSetting) {
  EXPECT_NE(error_of({"--access.listen=nonsense"}).find("access.listen"), std::string::npos);
  EXPECT_NE(error_of({"--threads=-1"}).find("threads"), std::string::npos);
  EXPECT_NE(error_of({"--no.such=1"}).find("no.such"), std::string::npos);
  EXPECT_NE(error_of({"--storage.durability=maybe"}).find("storage.durability"), std::string::npos);
  EXPECT_NE(error_of({"--access.heartbeat_min_s=100", "--access.heartbeat_max_s=50"})
                .find("access.heartbeat_min_s"),
            std::string::npos);
  EXPECT_NE(error_of({"--app=news:short"}).find("apps.keys"), std::string::npos);
}

TEST(Config, AFileWithASyntaxErrorNamesItsLine) {
  const auto path = write_file("herald-config-test3.toml", "data_dir = \"x\"\n[access\n");
  const auto error = error_of({"--config", path.string()});
  EXPECT_NE(error.find(":2:"), std::string::npos) << error;
}

TEST(Config, DocumentationListsEverySettingWithItsDefault) {
  std::ifstream in(std::filesystem::path(HERALD_SOURCE_DIR) / "docs" / "configuration.md");
  std::stringstream doc;
  doc << in.rdbuf();
  EXPECT_NE(doc.str().find(settings_markdown()), std::string::npos)
      << "docs/configuration.md is out of date; its table must be:\n"
      << settings_markdown();
}

}  // namespace
}  // namespace herald::server
