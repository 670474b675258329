# Install rules, the systemd unit, man pages and the Debian package
# (included by the top CMakeLists.txt once the targets exist).
#
#   cmake --install build [--prefix P]     (DESTDIR=D honoured)
#   cd build && cpack -G DEB               peernet-host_VERSION_ARCH.deb
#   luarocks make --lua-version 5.4        the Lua module only (PN_ROCK)

# Debian ships docs in /usr/share/doc/PACKAGE: the package is peernet-host.
set(CMAKE_INSTALL_DOCDIR share/doc/peernet-host CACHE PATH "Documentation")
include(GNUInstallDirs)

# Where lua5.4 finds C modules: pkg-config's INSTALL_CMOD when installing
# into Lua's own prefix (Debian: /usr/lib/x86_64-linux-gnu/lua/5.4), else
# LIBDIR/lua/5.4 under the prefix (/usr/local/lib/lua/5.4 is on Debian's
# default package.cpath). Relative paths follow `cmake --install --prefix`.
pkg_get_variable(PN_LUA_PREFIX lua5.4 prefix)
pkg_get_variable(PN_LUA_CMOD lua5.4 INSTALL_CMOD)
if(PN_LUA_CMOD AND PN_LUA_PREFIX AND CMAKE_INSTALL_PREFIX STREQUAL PN_LUA_PREFIX)
  file(RELATIVE_PATH PN_LUA_CMOD_DEFAULT ${PN_LUA_PREFIX} ${PN_LUA_CMOD})
else()
  set(PN_LUA_CMOD_DEFAULT ${CMAKE_INSTALL_LIBDIR}/lua/5.4)
endif()
set(PN_INSTALL_LUA_CMODDIR ${PN_LUA_CMOD_DEFAULT} CACHE PATH
    "Where the Lua module peernet.so goes (relative: under the prefix)")
# The same for Lua files (peernet.testing, for specs run by busted):
# INSTALL_LMOD, else share/lua/5.4 (on Debian's default package.path).
pkg_get_variable(PN_LUA_LMOD lua5.4 INSTALL_LMOD)
if(PN_LUA_LMOD AND PN_LUA_PREFIX AND CMAKE_INSTALL_PREFIX STREQUAL PN_LUA_PREFIX)
  file(RELATIVE_PATH PN_LUA_LMOD_DEFAULT ${PN_LUA_PREFIX} ${PN_LUA_LMOD})
else()
  set(PN_LUA_LMOD_DEFAULT ${CMAKE_INSTALL_DATADIR}/lua/5.4)
endif()
set(PN_INSTALL_LUA_LMODDIR ${PN_LUA_LMOD_DEFAULT} CACHE PATH
    "Where the Lua files of peernet.testing go (relative: under the prefix)")

# sd_notify(3) for Type=notify units, when libsystemd is there at build time.
pkg_check_modules(SYSTEMD IMPORTED_TARGET libsystemd)
if(SYSTEMD_FOUND)
  set_source_files_properties(${CMAKE_SOURCE_DIR}/src/luamod/bind_notify.c PROPERTIES
                              COMPILE_DEFINITIONS PN_HAVE_SYSTEMD
                              INCLUDE_DIRECTORIES "${SYSTEMD_INCLUDE_DIRS}")
  target_link_libraries(peernet_lua PRIVATE PkgConfig::SYSTEMD)
  target_link_libraries(peernet-host PRIVATE PkgConfig::SYSTEMD)
endif()

if(PN_ROCK)
  # luarocks passes the rock tree's LIBDIR as PN_INSTALL_LUA_CMODDIR.
  set_target_properties(peernet-host peernet_wire PROPERTIES EXCLUDE_FROM_ALL ON)
  install(TARGETS peernet_lua LIBRARY DESTINATION ${PN_INSTALL_LUA_CMODDIR})
  return()
endif()

set(PN_PKG ${CMAKE_CURRENT_LIST_DIR})
find_program(PN_LUA_EXE NAMES lua5.4 REQUIRED)

# --- the programs, the module, the C library ---------------------------------
install(TARGETS peernet-host RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS peernet_lua LIBRARY DESTINATION ${PN_INSTALL_LUA_CMODDIR})
install(FILES ${CMAKE_SOURCE_DIR}/lua/peernet/testing.lua
        DESTINATION ${PN_INSTALL_LUA_LMODDIR}/peernet)
install(FILES ${CMAKE_SOURCE_DIR}/lua/peernet/testing/runner.lua
        DESTINATION ${PN_INSTALL_LUA_LMODDIR}/peernet/testing)
# libpeernet is static only: the C API is young (0.x), and a shared library
# would promise an ABI under its SONAME that nothing checks yet.
target_include_directories(peernet INTERFACE $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
install(TARGETS peernet EXPORT peernetTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${CMAKE_SOURCE_DIR}/include/peernet DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h")

# A sanitized build's library needs the sanitizers' runtime in every program
# linking it (scripts/test --asan installs it too).
if(PN_SANITIZE)
  set(PN_PC_LIBS_EXTRA " -fsanitize=address,undefined")
  target_link_options(peernet INTERFACE $<INSTALL_INTERFACE:-fsanitize=address,undefined>)
endif()

# pkg-config: relocatable (prefix found from the .pc file's own place).
set(PN_PC_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
file(RELATIVE_PATH PN_PC_TO_PREFIX /p/${PN_PC_DIR} /p)
string(REGEX REPLACE "/$" "" PN_PC_TO_PREFIX "${PN_PC_TO_PREFIX}")
configure_file(${PN_PKG}/peernet.pc.in ${CMAKE_BINARY_DIR}/packaging/peernet.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/packaging/peernet.pc DESTINATION ${PN_PC_DIR})

# find_package(peernet): the peernet::peernet target.
set(PN_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/peernet)
install(EXPORT peernetTargets NAMESPACE peernet:: DESTINATION ${PN_CMAKE_DIR})
include(CMakePackageConfigHelpers)
configure_package_config_file(${PN_PKG}/peernetConfig.cmake.in
                              ${CMAKE_BINARY_DIR}/packaging/peernetConfig.cmake
                              INSTALL_DESTINATION ${PN_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/packaging/peernetConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/packaging/peernetConfig.cmake
              ${CMAKE_BINARY_DIR}/packaging/peernetConfigVersion.cmake
        DESTINATION ${PN_CMAKE_DIR})

# --- man pages: generated from docs/cli.md and docs/scripts.md ----------------
set(PN_MAN_PAGES peernet-host.1 peernet-scripts.7)
set(PN_MAN_OUT)
foreach(page ${PN_MAN_PAGES})
  add_custom_command(
    OUTPUT ${CMAKE_BINARY_DIR}/man/${page}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
    COMMAND ${PN_LUA_EXE} ${CMAKE_SOURCE_DIR}/man/mkman.lua ${CMAKE_SOURCE_DIR}/man/${page}.lua
            ${CMAKE_SOURCE_DIR} ${PROJECT_VERSION} ${CMAKE_BINARY_DIR}/man/${page}
    DEPENDS ${CMAKE_SOURCE_DIR}/man/mkman.lua ${CMAKE_SOURCE_DIR}/man/${page}.lua
            ${CMAKE_SOURCE_DIR}/docs/cli.md ${CMAKE_SOURCE_DIR}/docs/scripts.md
    COMMENT "Generating man page ${page}")
  list(APPEND PN_MAN_OUT ${CMAKE_BINARY_DIR}/man/${page})
  string(REGEX REPLACE ".*\\." "" section ${page})
  install(FILES ${CMAKE_BINARY_DIR}/man/${page} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
endforeach()
add_custom_target(man ALL DEPENDS ${PN_MAN_OUT})

# --- docs, completions, editor definitions -------------------------------------
install(FILES ${CMAKE_SOURCE_DIR}/README.md ${CMAKE_SOURCE_DIR}/CHANGELOG.md
              ${CMAKE_SOURCE_DIR}/LICENSE ${CMAKE_SOURCE_DIR}/docs/cli.md
              ${CMAKE_SOURCE_DIR}/docs/scripts.md ${CMAKE_SOURCE_DIR}/docs/values.md
              ${CMAKE_SOURCE_DIR}/docs/host.md ${CMAKE_SOURCE_DIR}/docs/elixir.md
              ${CMAKE_SOURCE_DIR}/docs/testing.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${CMAKE_SOURCE_DIR}/examples DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES ${PN_PKG}/completions/peernet-host.bash
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME peernet-host)
install(FILES ${PN_PKG}/completions/_peernet-host
        DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions)
# LuaLS (lua-language-server): add this folder to workspace.library.
install(FILES ${CMAKE_SOURCE_DIR}/types/peernet.lua ${CMAKE_SOURCE_DIR}/types/host.lua
              ${CMAKE_SOURCE_DIR}/types/testing.lua
        DESTINATION ${CMAKE_INSTALL_DATADIR}/peernet-host/types)

# --- the systemd unit (installed, never enabled) -------------------------------
# ExecStart names the binary under the prefix given at install time, so the
# unit is written by the install step itself.
set(PN_UNIT_DIR lib/systemd/system)
# Type=notify only when serve can notify: without libsystemd systemd would
# wait for a READY=1 that never comes, so such a build's unit is Type=exec.
if(SYSTEMD_FOUND)
  set(PN_UNIT_TYPE notify)
else()
  set(PN_UNIT_TYPE exec)
endif()
install(CODE "
  set(PN_UNIT_TYPE ${PN_UNIT_TYPE})
  set(PN_BINDIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}\")
  set(unit \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${PN_UNIT_DIR}/peernet-host.service\")
  message(STATUS \"Installing: \${unit}\")
  configure_file(\"${PN_PKG}/peernet-host.service.in\" \"\${unit}\" @ONLY)
  list(APPEND CMAKE_INSTALL_MANIFEST_FILES \"\${unit}\")
")
install(FILES ${PN_PKG}/sysusers.conf DESTINATION lib/sysusers.d RENAME peernet-host.conf)

# --- the Debian package: cpack -G DEB -----------------------------------------
# One package, headers, libpeernet.a and the CMake/pkg-config files
# included: a -dev split earns its keep when a shared library's runtime
# package must install without them, and libpeernet is static only (0.x,
# no SONAME). With a shared library it becomes libpeernetN + libpeernet-dev
# (CPACK_DEB_COMPONENT_INSTALL).
set(CPACK_PACKAGE_NAME peernet-host)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "peernet-host maintainers <peernet-host@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "PeerNet peer programmed in Lua")
set(CPACK_PACKAGE_DESCRIPTION
    "peernet-host runs one PeerNet peer (Noise XX, ETF, LAN discovery), compatible with the\nElixir PeerNet library, with sandboxed Lua handler scripts, a CLI, the Lua module\npeernet, the C library libpeernet and a systemd unit (not enabled).")
set(CPACK_RESOURCE_FILE_LICENSE ${CMAKE_SOURCE_DIR}/LICENSE)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON) # Depends computed by dpkg-shlibdeps
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "lua5.4")
# prerm stops the service on remove; postinst makes the user (sysusers, else
# adduser/useradd) and restarts a running service on upgrade.
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${PN_PKG}/deb/postinst ${PN_PKG}/deb/prerm
                                       ${PN_PKG}/deb/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
