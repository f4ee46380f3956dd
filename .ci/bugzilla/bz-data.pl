#!/usr/bin/perl
# Creates what tracker-bridge's tests need in a fresh Bugzilla 5.2 (run by .ci/install-bugzilla.sh
# from the Bugzilla dir with env.sh sourced). Idempotent: skips what exists.
use strict; use warnings;
use lib qw(. lib);
use Bugzilla;
use Bugzilla::Constants;
use Bugzilla::User;
use Bugzilla::User::APIKey;
use Bugzilla::Product;
use Bugzilla::Component;
use Bugzilla::Field;
use Bugzilla::Field::Choice;
use Bugzilla::Keyword;
use Bugzilla::Status;
use Bugzilla::Group;
use Bugzilla::Config qw(SetParam write_params);

Bugzilla->usage_mode(USAGE_MODE_CMDLINE);
my $dbh = Bugzilla->dbh;
my $admin = Bugzilla::User->check($ENV{BZ_ADMIN});
Bugzilla->set_user($admin);

# params
SetParam('usestatuswhiteboard', 1);
SetParam('mail_delivery_method', 'None');
SetParam('urlbase', "$ENV{BZ_URL}/");
write_params();

# the bridge's user, in editbugs + canconfirm, with a fixed throwaway API key
my $bot = Bugzilla::User->new({name => $ENV{BZ_BOT}});
$bot ||= Bugzilla::User->create({login_name => $ENV{BZ_BOT}, realname => 'SLA bot',
                                 cryptpassword => $ENV{BZ_BOT_PASS}});
for my $g (qw(editbugs canconfirm)) {
  my $grp = Bugzilla::Group->new({name => $g});
  $dbh->do("INSERT IGNORE INTO user_group_map (user_id, group_id, isbless, grant_type) VALUES (?,?,0,?)",
           undef, $bot->id, $grp->id, GRANT_DIRECT);
}
# a person (the human who adds their own keyword)
my $nurse = Bugzilla::User->new({name => $ENV{BZ_NURSE}})
  || Bugzilla::User->create({login_name => $ENV{BZ_NURSE}, realname => 'Nurse',
                             cryptpassword => 'nurse-local-pw-1'});
for my $g (qw(editbugs canconfirm)) {
  my $grp = Bugzilla::Group->new({name => $g});
  $dbh->do("INSERT IGNORE INTO user_group_map (user_id, group_id, isbless, grant_type) VALUES (?,?,0,?)",
           undef, $nurse->id, $grp->id, GRANT_DIRECT);
}
$dbh->do("INSERT IGNORE INTO user_group_map (user_id, group_id, isbless, grant_type) VALUES (?,?,0,?)",
         undef, $admin->id, Bugzilla::Group->new({name => 'editbugs'})->id, GRANT_DIRECT);
for my $u ([$bot, $ENV{BZ_BOT_KEY}], [$admin, $ENV{BZ_ADMIN_KEY}]) {
  my ($user, $key) = @$u;
  unless (Bugzilla::User::APIKey->new({name => $key})) {
    my $k = Bugzilla::User::APIKey->create({user_id => $user->id, description => 'local test'});
    $dbh->do("UPDATE user_api_keys SET api_key = ? WHERE id = ?", undef, $key, $k->id);
  }
}
if (!Bugzilla::User::APIKey->new({name => $ENV{BZ_NURSE_KEY}})) {
  my $k = Bugzilla::User::APIKey->create({user_id => $nurse->id, description => 'local test'});
  $dbh->do("UPDATE user_api_keys SET api_key = ? WHERE id = ?", undef, $ENV{BZ_NURSE_KEY}, $k->id);
}

# products and components
for my $p (['ClinicSuite', [qw(Calendar EMR Reports)]], ['ClinicSuite-Premium', [qw(EMR)]]) {
  my ($name, $comps) = @$p;
  my $prod = Bugzilla::Product->new({name => $name})
    || Bugzilla::Product->create({name => $name, description => "$name product",
                                  version => 'unspecified', allows_unconfirmed => 1,
                                  classification => 'Unclassified'});
  for my $c (@$comps) {
    next if Bugzilla::Component->new({product => $prod, name => $c});
    Bugzilla::Component->create({name => $c, product => $prod, description => "$c component",
                                 initialowner => $ENV{BZ_ADMIN}});
  }
}

# custom fields: response due as Date/Time (5), resolution due as Free Text (1), drop-downs
my %fields = (
  cf_sla_response_due   => [FIELD_TYPE_DATETIME,      'SLA response due'],
  cf_sla_resolution_due => [FIELD_TYPE_FREETEXT,      'SLA resolution due'],
  cf_impact             => [FIELD_TYPE_SINGLE_SELECT, 'Impact', [qw(High Medium Low)]],
  cf_support_plan       => [FIELD_TYPE_SINGLE_SELECT, 'Support plan', [qw(essentials professional premium)]],
);
for my $name (sort keys %fields) {
  my ($type, $desc, $values) = @{$fields{$name}};
  my $f = Bugzilla::Field->new({name => $name});
  $f ||= Bugzilla::Field->create({name => $name, description => $desc, type => $type,
                                  custom => 1, enter_bug => 1, buglist => 1, mailhead => 0});
  for my $v (@{$values || []}) {
    next if Bugzilla::Field::Choice->type($f)->new({name => $v});
    Bugzilla::Field::Choice->type($f)->create({value => $v, sortkey => 0});
  }
}

# priorities the policy's classify map knows (Bugzilla's defaults are Highest..Lowest)
for my $v (qw(Critical Medium)) {
  my $f = Bugzilla::Field->new({name => 'priority'});
  next if Bugzilla::Field::Choice->type($f)->new({name => $v});
  Bugzilla::Field::Choice->type($f)->create({value => $v, sortkey => 5});
}

# a waiting status
unless (Bugzilla::Status->new({name => 'NEEDINFO'})) {
  Bugzilla::Status->create({value => 'NEEDINFO', is_open => 1, sortkey => 450});
  # workflow: every open status <-> NEEDINFO, NEEDINFO -> RESOLVED
  my $ni = Bugzilla::Status->new({name => 'NEEDINFO'});
  for my $s (Bugzilla::Status->get_all) {
    next if $s->id == $ni->id;
    $dbh->do("INSERT IGNORE INTO status_workflow (old_status, new_status, require_comment) VALUES (?,?,0)",
             undef, $s->id, $ni->id) if $s->is_open;
    $dbh->do("INSERT IGNORE INTO status_workflow (old_status, new_status, require_comment) VALUES (?,?,0)",
             undef, $ni->id, $s->id);
  }
}

# keywords the bridge may write (the labels of examples/policies/care-pathway.yaml), the ones
# people set in the tests, and any given as arguments (tests/bugzilla/conftest.py adds a
# policy label the list lacks that way)
for my $k (qw(sla-critical sla-high sla-medium sla-low sla-at-risk-response sla-breached-response
              sla-at-risk-resolution sla-breached-resolution sla-paused sla-level-incident-owner
              sla-level-support-manager sla-level-support-director escalation-requested
              patient-safety customer-label customer-vip), @ARGV) {
  next if Bugzilla::Keyword->new({name => $k});
  Bugzilla::Keyword->create({name => $k, description => "keyword $k"});
}
print "data ok\n";
