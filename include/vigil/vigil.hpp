// libvigil: licence plates from images, read and checked against country formats.
//
//   #include <vigil/vigil.hpp>
//   auto rec = vigil::Recognizer::load();                       // models found next to the binary
//   if (!rec) { std::cerr << rec.error() << "\n"; return 1; }
//   for (const auto& p : rec->recognize(cv::imread("car.jpg")).plates)
//     std::cout << p.text << " (" << p.country << ", " << p.confidence << ")\n";
#pragma once

#include "vigil/common.hpp"
#include "vigil/dataset.hpp"
#include "vigil/formats.hpp"
#include "vigil/recognizer.hpp"
#include "vigil/tracker.hpp"
#include "vigil/video.hpp"
