# The project's NixOS module, rendered against a stub lib and pkgs: the
# module's own logic is evaluated, and nothing of nixpkgs is needed, so it
# runs offline. Lazy evaluation leaves option types and the rest of nixpkgs
# untouched; mkIf, mkDefault and a shallow mkMerge are resolved in place.
{ flake, settings ? { }, stateVersion ? "25.05" }:
let
  inherit (builtins) isAttrs mapAttrs foldl' concatStringsSep substring stringLength;
  hasPrefix = pre: s: substring 0 (stringLength pre) s == pre;
  lib = rec {
    inherit hasPrefix concatStringsSep;
    removePrefix = pre: s: if hasPrefix pre s then substring (stringLength pre) (-1) s else s;
    mkOption = attrs: attrs // { _isOption = true; };
    mkEnableOption = what: { _isOption = true; default = false; description = what; };
    literalExpression = text: { _type = "literalExpression"; inherit text; };
    mkIf = condition: content: { _type = "if"; inherit condition content; };
    mkMerge = contents: { _type = "merge"; inherit contents; };
    mkDefault = content: { _type = "override"; priority = 1000; inherit content; };
    mkForce = content: { _type = "override"; priority = 50; inherit content; };
    optionalAttrs = c: a: if c then a else { };
    optionalString = c: s: if c then s else "";
    optional = c: x: if c then [ x ] else [ ];
    optionals = c: xs: if c then xs else [ ];
    versionAtLeast = a: b: builtins.compareVersions a b >= 0;
    escapeShellArg = a: "'" + builtins.replaceStrings [ "'" ] [ "'\\''" ] (toString a) + "'";
    escapeShellArgs = xs: concatStringsSep " " (map escapeShellArg xs);
    genAttrs = names: f: builtins.listToAttrs (map (n: { name = n; value = f n; }) names);
    inherit (builtins) all filter;
    unique = foldl' (acc: x: if builtins.elem x acc then acc else acc ++ [ x ]) [ ];
    types = throw "option types are not rendered";
  };
  pkg = name: { outPath = "/nix/store/stub-${name}"; };
  pkgs = {
    path = "/nix/store/stub-nixpkgs";
    stdenv.hostPlatform.system = "x86_64-linux";
    nixos-container = pkg "nixos-container" // {
      override = dirs: pkg "nixos-container-${baseNameOf dirs.configurationDirectory}";
    };
    git = pkg "git";
    jq = pkg "jq";
    inherit lib;
    writeText = name: text: "/nix/store/stub-${name}";
    # The VM check's arguments, as they are, instead of a VM.
    testers.runNixOSTest = test: test;
    e2fsprogs = pkg "e2fsprogs";
    util-linux = pkg "util-linux";
  };
  self = {
    packages.x86_64-linux.hive-tui = pkg "hive-tui";
    # What the VM check imports, as a marker to find in its host's imports.
    nixosModules.default = { _file = "the hive-tui module"; };
  };
  outputs = (import flake).outputs { inherit self; nixpkgs = { inherit lib; legacyPackages.x86_64-linux = pkgs; }; };
  module = outputs.nixosModules.default;
  defaults = o: if o._isOption or false then o.default or null else mapAttrs (_: defaults) o;
  resolve = x:
    if !(isAttrs x) then x
    else if x._type or null == "if" then (if x.condition then resolve x.content else null)
    else if x._type or null == "override" then resolve x.content
    else if x._type or null == "merge" then foldl' (a: b: a // resolve b) { } x.contents
    else if x ? outPath then toString x
    else mapAttrs (_: resolve) x;
  result = module { inherit config lib pkgs; };
  config = {
    services.hive-tui = foldl' (a: b: a // b) (defaults result.options.services.hive-tui) [ { enable = true; } settings ];
    boot.enableContainers = true;
    system.stateVersion = stateVersion;
    nix.package = pkg "nix";
    systemd.package = pkg "systemd";
  };
  rendered = resolve result.config;
in
{
  service = rendered.systemd.services.hive-tui // {
    path = map toString rendered.systemd.services.hive-tui.path;
  };
  nat = rendered.networking.nat or null;
  # The VM check: its script, and the host's settings besides its store paths.
  vm =
    let
      test = outputs.checks.x86_64-linux.vm;
      node = test.nodes.host { inherit lib pkgs; config = { }; };
    in
    {
      inherit (test) name testScript;
      inherit (node) imports;
      inherit (node) services boot;
    };
}
