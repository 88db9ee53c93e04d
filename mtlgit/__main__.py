from mtlgit.cli.entry import console

console()
