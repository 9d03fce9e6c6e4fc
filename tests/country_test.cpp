// Naming a plate's country: the classifier's probabilities combined with the formats the read fits
// (detail::choose_country), with made-up probabilities, no model.
#include "read/country.hpp"

#include <gtest/gtest.h>

namespace vigil {
namespace {

const FormatSet& eu() {
  static const FormatSet set = [] {
    auto loaded = FormatSet::load(VIGIL_SOURCE_DIR "/data/plate_formats.json");
    EXPECT_TRUE(loaded.ok()) << loaded.error();
    return *loaded->for_region(Region{});
  }();
  return set;
}

const std::vector<std::string> kClasses = {"at", "cz", "de", "fr", "it", "sk", "us"};

std::vector<float> probs(std::initializer_list<std::pair<const char*, float>> given) {
  std::vector<float> p(kClasses.size(), 0.0f);
  for (const auto& [c, v] : given) p[std::find(kClasses.begin(), kClasses.end(), c) - kClasses.begin()] = v;
  return p;
}

TEST(ChooseCountry, TheLooksPickAmongTheCountriesWhoseFormatsTheTextFits) {
  // BA123AB fits the Slovak, French and Italian layouts (and others); the plate looks Slovak.
  const auto sk = detail::choose_country(kClasses, probs({{"sk", 0.7f}, {"fr", 0.2f}, {"it", 0.1f}}), eu(),
                                         "BA123AB", "", 20.0f);
  EXPECT_EQ(sk.country, "sk");
  ASSERT_NE(sk.format, nullptr);
  EXPECT_EQ(sk.format->country, "sk");
  EXPECT_GT(sk.confidence, 0.5f);
  EXPECT_LE(sk.confidence, 1.0f);
  const auto fr =
      detail::choose_country(kClasses, probs({{"sk", 0.1f}, {"fr", 0.85f}}), eu(), "BA123AB", "", 20.0f);
  EXPECT_EQ(fr.country, "fr");
}

Candidate candidate(const std::string& text, float confidence) { return {text, confidence, "", ""}; }

TEST(ChooseRead, TheLooksChooseBetweenReadsFittingDifferentCountries) {
  // "BA123AB" fits the Slovak layout, "8A123AB" none: a Slovak-looking plate keeps the Slovak read; on a
  // German-looking one neither fits the country it looks like, and the surer read stays.
  const std::vector<Candidate> reads{candidate("8A123AB", 0.6f), candidate("BA123AB", 0.3f)};
  ASSERT_TRUE(eu().match("8A123AB").empty());
  EXPECT_EQ(detail::choose_read(kClasses, probs({{"sk", 0.9f}}), eu(), reads, "", 20.0f, 0.05f), 1u);
  EXPECT_EQ(detail::choose_read(kClasses, probs({{"de", 0.9f}}), eu(), reads, "", 20.0f, 0.05f), 0u);
  // A much surer read is not overturned by the looks...
  const std::vector<Candidate> sure{candidate("8A123AB", 0.99f), candidate("BA123AB", 0.001f)};
  EXPECT_EQ(detail::choose_read(kClasses, probs({{"sk", 0.9f}}), eu(), sure, "", 20.0f, 0.05f), 0u);
  // ...and with the factor at 1 the looks never change a read, nor without a classifier.
  EXPECT_EQ(detail::choose_read(kClasses, probs({{"sk", 0.9f}}), eu(), reads, "", 20.0f, 1.0f), 0u);
  EXPECT_EQ(detail::choose_read({}, {}, eu(), reads, "", 20.0f, 0.05f), 0u);
  // The country's look picks between two fitting reads: Czech "1AB2345" against Slovak "BA123AB".
  const std::vector<Candidate> two{candidate("1AB2345", 0.5f), candidate("BA123AB", 0.2f)};
  EXPECT_EQ(detail::choose_read(kClasses, probs({{"sk", 0.95f}, {"cz", 0.01f}}), eu(), two, "", 20.0f, 0.05f),
            1u);
  EXPECT_EQ(detail::choose_read(kClasses, probs({{"cz", 0.95f}, {"sk", 0.01f}}), eu(), two, "", 20.0f, 0.05f),
            0u);
}

TEST(ChooseCountry, AFittingFormatOutweighsAnUnsureLook) {
  // 1AB2345 fits only Czech layouts: an unsure German look does not override it ...
  const auto cz =
      detail::choose_country(kClasses, probs({{"de", 0.45f}, {"cz", 0.3f}}), eu(), "1AB2345", "", 20.0f);
  EXPECT_EQ(cz.country, "cz");
  // ... but a sure one does, and then no format of that country is claimed.
  const auto de =
      detail::choose_country(kClasses, probs({{"de", 0.97f}, {"cz", 0.01f}}), eu(), "1AB2345", "", 20.0f);
  EXPECT_EQ(de.country, "de");
  EXPECT_EQ(de.format, nullptr);
}

TEST(ChooseCountry, CountriesOutsideTheRegionAreNeverNamed) {
  const auto r =
      detail::choose_country(kClasses, probs({{"us", 0.9f}, {"de", 0.05f}}), eu(), "QQQ", "", 20.0f);
  EXPECT_EQ(r.country, "de") << "us is not in the eu region";
}

TEST(ChooseCountry, PreferredCountryAndFormatsAloneWithoutAClassifier) {
  const auto at =
      detail::choose_country(kClasses, probs({{"sk", 0.6f}, {"at", 0.3f}}), eu(), "PP587AO", "at", 20.0f);
  EXPECT_EQ(at.country, "at");
  const auto formats_only = detail::choose_country({}, {}, eu(), "1AB2345", "", 20.0f);
  EXPECT_EQ(formats_only.country, "cz");
  EXPECT_FLOAT_EQ(formats_only.confidence, 1.0f);
  EXPECT_EQ(detail::choose_country({}, {}, eu(), "QQQ", "", 20.0f).country, "");
}

}  // namespace
}  // namespace vigil
