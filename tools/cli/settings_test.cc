#include "cli/settings.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <stdlib.h>

namespace herald::cli {
namespace {

class SettingsTest : public ::testing::Test {
 protected:
  SettingsTest() {
    std::string pattern = (std::filesystem::temp_directory_path() / "herald-cli-XXXXXX").string();
    dir_ = mkdtemp(pattern.data());
    env_["HOME"] = dir_.string();
  }
  ~SettingsTest() override { std::filesystem::remove_all(dir_); }

  Getenv getenv() const {
    return [this](std::string_view name) -> std::optional<std::string> {
      const auto it = env_.find(std::string(name));
      if (it == env_.end()) return std::nullopt;
      return it->second;
    };
  }
  Settings resolve(std::vector<std::string_view> args) const {
    return resolve_settings(Args::parse(args), getenv());
  }
  std::filesystem::path write(const std::filesystem::path& path, const std::string& text) {
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path) << text;
    return path;
  }
  std::filesystem::path default_file() const { return dir_ / ".config" / "herald" / "cli.toml"; }

  std::filesystem::path dir_;
  std::map<std::string, std::string> env_;
};

TEST_F(SettingsTest, WithNothingTheServerIsTheLocalDefaultAndThereAreNoSecrets) {
  const Settings s = resolve({"health"});
  EXPECT_EQ(s.server, kDefaultServer);
  EXPECT_EQ(s.host, "127.0.0.1");
  EXPECT_EQ(s.port, 7780);
  EXPECT_EQ(s.api_key, std::nullopt);
  EXPECT_EQ(s.admin_token, std::nullopt);
  EXPECT_EQ(s.config_path, default_file());
}

TEST_F(SettingsTest, TheFlagWinsOverTheEnvironmentWhichWinsOverTheFile) {
  write(default_file(), "api_key = \"file\"\nadmin_token = \"file\"\nserver = \"h1:1\"\n");
  env_["HERALD_API_KEY"] = "env";
  env_["HERALD_SERVER"] = "h2:2";
  const Settings s = resolve({"--server", "h3:3", "health"});
  EXPECT_EQ(s.api_key, "env");
  EXPECT_EQ(s.admin_token, "file");
  EXPECT_EQ(s.host, "h3");
  EXPECT_EQ(resolve({"--key", "flag"}).api_key, "flag");
  EXPECT_EQ(resolve({}).host, "h2");
}

TEST_F(SettingsTest, TheConfigFlagWinsOverHeraldConfigWhichWinsOverXdg) {
  const auto xdg = write(dir_ / "xdg" / "herald" / "cli.toml", "api_key = \"xdg\"\n");
  const auto named = write(dir_ / "named.toml", "api_key = \"named\"\n");
  const auto flag = write(dir_ / "flag.toml", "api_key = \"flag\"\n");
  env_["XDG_CONFIG_HOME"] = (dir_ / "xdg").string();
  EXPECT_EQ(resolve({}).api_key, "xdg");
  env_["HERALD_CONFIG"] = named.string();
  EXPECT_EQ(resolve({}).api_key, "named");
  EXPECT_EQ(resolve({"--config", flag.string()}).api_key, "flag");
}

TEST_F(SettingsTest, ANamedConfigFileMustExistButTheDefaultOneNeedNot) {
  EXPECT_NO_THROW((void)resolve({}));
  EXPECT_THROW((void)resolve({"--config", (dir_ / "missing.toml").string()}), UsageError);
  env_["HERALD_CONFIG"] = (dir_ / "missing.toml").string();
  EXPECT_THROW((void)resolve({}), UsageError);
}

TEST_F(SettingsTest, RefusesAnUnknownKeyAWrongTypeAndBadToml) {
  write(default_file(), "api-key = \"k\"\n");
  EXPECT_THROW((void)resolve({}), UsageError);
  write(default_file(), "api_key = 12\n");
  EXPECT_THROW((void)resolve({}), UsageError);
  write(default_file(), "api_key = \"\"\n");
  EXPECT_THROW((void)resolve({}), UsageError);
  write(default_file(), "api_key = \"unterminated\n");
  try {
    (void)resolve({});
    FAIL() << "no UsageError";
  } catch (const UsageError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(default_file().string() + ":1: ", 0), 0u) << e.what();
  }
}

TEST_F(SettingsTest, TheServerIsAnHttpOrHttpsUrl) {
  EXPECT_EQ(resolve({"--server", "http://[::1]:81"}).host, "::1");
  EXPECT_EQ(resolve({"--server", "example.com"}).port, 80);
  EXPECT_FALSE(resolve({"--server", "example.com"}).https);
  const Settings https = resolve({"--server", "https://push.example.com"});
  EXPECT_TRUE(https.https);
  EXPECT_EQ(https.host, "push.example.com");
  EXPECT_EQ(https.port, 443);
  EXPECT_EQ(resolve({"--server", "https://push.example.com:8443/"}).port, 8443);
  for (const std::string_view bad : {"http://h:0", "http://h:1/path", "http://", "https://",
                                     "http://h:99999", "http://u@h:1", "https://h:1?q=1"}) {
    EXPECT_THROW((void)resolve({"--server", bad}), UsageError) << bad;
  }
}

TEST_F(SettingsTest, AnotherSchemeIsRefusedByName) {
  try {
    (void)resolve({"--server", "ftp://h:21"});
    FAIL() << "no UsageError";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("scheme must be http or https, not 'ftp'"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW((void)resolve({"--server", "wss://h:1"}), UsageError);
}

TEST_F(SettingsTest, OverHttpsTheTlsServerNameIsTheHostUnlessSet) {
  env_["HERALD_SERVER"] = "https://push.example.com:7780";
  Settings s = resolve({});
  EXPECT_EQ(s.tls_server_name, "push.example.com");
  EXPECT_FALSE(s.ca_file.has_value());

  // An address as the host: the certificate names the deployment.
  env_["HERALD_SERVER"] = "https://10.0.0.7:7780";
  EXPECT_EQ(resolve({}).tls_server_name, "10.0.0.7");
  env_["HERALD_TLS_SERVER_NAME"] = "push.example.com";
  EXPECT_EQ(resolve({}).tls_server_name, "push.example.com");
  EXPECT_EQ(resolve({"--tls-server-name", "edge.example.com"}).tls_server_name, "edge.example.com");
  EXPECT_EQ(resolve({}).host, "10.0.0.7");
}

TEST_F(SettingsTest, TheCaFileComesFromTheFlagTheEnvironmentOrTheFile) {
  write(default_file(), "server = \"https://h:1\"\nca_file = \"/file/ca.pem\"\n");
  EXPECT_EQ(resolve({}).ca_file, "/file/ca.pem");
  env_["HERALD_CA_FILE"] = "/env/ca.pem";
  EXPECT_EQ(resolve({}).ca_file, "/env/ca.pem");
  EXPECT_EQ(resolve({"--ca-file", "/flag/ca.pem"}).ca_file, "/flag/ca.pem");
}

TEST_F(SettingsTest, TlsFlagsWithAnHttpServerAreAMistake) {
  EXPECT_THROW((void)resolve({"--server", "http://h:1", "--ca-file", "ca.pem"}), UsageError);
  EXPECT_THROW((void)resolve({"--server", "h:1", "--tls-server-name", "n"}), UsageError);
  // From the environment they are ignored: one environment may serve both kinds of server.
  env_["HERALD_CA_FILE"] = "/env/ca.pem";
  const Settings s = resolve({"--server", "http://h:1"});
  EXPECT_FALSE(s.https);
  EXPECT_FALSE(s.ca_file.has_value());
}

}  // namespace
}  // namespace herald::cli
