# The Debian package: `cmake --build BUILD --target package` (or `cd BUILD && cpack`) writes
# BUILD/vigil_<version>-<release>_<arch>.deb with the binary, models, format data, samples, the dashboard
# (when the tree has web/), the systemd units, the default configuration in /etc/vigil (conffiles) and
# maintainer scripts that create the `vigil` system user. Depends: computed by dpkg-shlibdeps.
#
# The architecture comes from the compiler's target (CMAKE_LIBRARY_ARCHITECTURE, e.g. aarch64-linux-gnu
# with a cross toolchain -> arm64), else from dpkg; VIGIL_DEB_ARCHITECTURE overrides it.

set(VIGIL_DEB_ARCHITECTURE "" CACHE STRING
    "Debian architecture of the package (default: the compiler's target, else dpkg --print-architecture)")
set(VIGIL_DEB_RELEASE "1" CACHE STRING "Debian revision of the package (the part after the version)")

set(_vigil_deb_arch "${VIGIL_DEB_ARCHITECTURE}")
if(NOT _vigil_deb_arch AND CMAKE_LIBRARY_ARCHITECTURE)
  find_program(VIGIL_DPKG_ARCHITECTURE dpkg-architecture)
  if(VIGIL_DPKG_ARCHITECTURE)
    execute_process(COMMAND ${VIGIL_DPKG_ARCHITECTURE} -t${CMAKE_LIBRARY_ARCHITECTURE} -qDEB_HOST_ARCH
                    OUTPUT_VARIABLE _vigil_deb_arch OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET
                    RESULT_VARIABLE _vigil_rc)
    if(NOT _vigil_rc EQUAL 0)
      set(_vigil_deb_arch "")
    endif()
  endif()
endif()
if(NOT _vigil_deb_arch)
  # No multiarch triplet: map the target processor (cross builds) or ask dpkg (native builds).
  string(TOLOWER "${CMAKE_SYSTEM_PROCESSOR}" _vigil_cpu)
  if(CMAKE_CROSSCOMPILING)
    if(_vigil_cpu MATCHES "^(aarch64|arm64)$")
      set(_vigil_deb_arch arm64)
    elseif(_vigil_cpu MATCHES "^arm")
      set(_vigil_deb_arch armhf)
    elseif(_vigil_cpu MATCHES "^(x86_64|amd64)$")
      set(_vigil_deb_arch amd64)
    elseif(_vigil_cpu MATCHES "^riscv64$")
      set(_vigil_deb_arch riscv64)
    endif()
  else()
    find_program(VIGIL_DPKG dpkg)
    if(VIGIL_DPKG)
      execute_process(COMMAND ${VIGIL_DPKG} --print-architecture OUTPUT_VARIABLE _vigil_deb_arch
                      OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    endif()
  endif()
endif()
if(NOT _vigil_deb_arch)
  message(STATUS "vigil: no Debian architecture for ${CMAKE_SYSTEM_PROCESSOR}; set VIGIL_DEB_ARCHITECTURE "
                 "to build the .deb")
  set(_vigil_deb_arch "unknown")
endif()
message(STATUS "vigil: Debian package architecture ${_vigil_deb_arch}")

# System files go into the package only: a component left out of plain `cmake --install`, which must not
# write /etc or /lib/systemd of the machine it runs on.
install(FILES packaging/systemd/vigil-serve.service packaging/systemd/vigil-watch@.service
        DESTINATION /lib/systemd/system COMPONENT system EXCLUDE_FROM_ALL)
install(FILES packaging/etc/serve.conf DESTINATION /etc/vigil COMPONENT system EXCLUDE_FROM_ALL)
install(FILES packaging/etc/cameras/example.json DESTINATION /etc/vigil/cameras COMPONENT system
        EXCLUDE_FROM_ALL)
install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT system EXCLUDE_FROM_ALL)
set(VIGIL_DEB_CONFFILES /etc/vigil/serve.conf /etc/vigil/cameras/example.json)
list(JOIN VIGIL_DEB_CONFFILES "\n" _vigil_conffiles)
file(WRITE ${PROJECT_BINARY_DIR}/packaging/conffiles "${_vigil_conffiles}\n")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME vigil)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "Vigil")
set(CPACK_PACKAGE_CONTACT "Vigil maintainers <vigil@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "licence-plate reader for cameras and vignette registry server")
# The summary above is the Description's first line; this is the rest.
string(CONCAT CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "Vigil reads licence plates in images, videos, USB, IP and Raspberry Pi cameras (vigil read,\n"
    "vigil watch) and checks them against a registry of paid highway vignettes (vigil serve).\n"
    "This package runs each camera of a camera box as a systemd unit, vigil-watch@NAME, configured\n"
    "by /etc/vigil/cameras/NAME.json, and the registry as vigil-serve.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# The whole project plus the package-only system files.
set(CPACK_INSTALL_CMAKE_PROJECTS "${PROJECT_BINARY_DIR};vigil;ALL;/;${PROJECT_BINARY_DIR};vigil;system;/")
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE ${VIGIL_DEB_RELEASE})
set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE ${_vigil_deb_arch})
set(CPACK_DEBIAN_PACKAGE_SECTION video)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS OFF)
# passwd: groupadd/useradd in postinst (Priority: required, listed for clarity).
set(CPACK_DEBIAN_PACKAGE_DEPENDS "passwd")
# Camera sources: appsink and videoconvert for GStreamer pipelines; libcamera for the Raspberry Pi camera.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "gstreamer1.0-plugins-base")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS
    "gstreamer1.0-libcamera, libcamera-v4l2, gstreamer1.0-plugins-good, gstreamer1.0-libav, v4l-utils")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/debian/postinst ${PROJECT_SOURCE_DIR}/packaging/debian/prerm
    ${PROJECT_SOURCE_DIR}/packaging/debian/postrm ${PROJECT_BINARY_DIR}/packaging/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
