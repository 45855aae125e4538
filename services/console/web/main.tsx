import '@picocss/pico/css/pico.min.css';
import './style.css';
import { render } from 'preact';
import { LocationProvider, Route, Router, useLocation } from 'preact-iso';
import { useEffect } from 'preact/hooks';
import { signInUrl } from './api';
import { AuditPage } from './audit';
import { DevicePage } from './device';
import { FleetPage } from './fleet';
import { HabitPage, NewHabitPage } from './habit-editor';
import { HabitsPage } from './habits';
import { KeysPage } from './keys';
import { LogsPage } from './logs';
import { ResourceListPage, ResourcePage } from './resource';
import { RolloutPage, RolloutsPage } from './rollouts';
import { accounts, devices, empireDates, legions } from './resources';
import { loadOperator, OperatorContext, useMay, type Operator } from './session';
import { TokensPage } from './tokens';
import { Toasts } from './ui';

/** The main menu: each page with the method it cannot show without; a role that may not call it is not offered the page. */
const MENU = [
  ['/', 'Fleet', 'FleetService/GetFleetSummary'],
  ['/devices', 'Devices', 'DeviceService/ListDevices'],
  ['/accounts', 'Accounts', 'AccountService/ListAccounts'],
  ['/habits', 'Habits', 'HabitService/ListHabits'],
  ['/rollouts', 'Rollouts', 'RolloutService/ListRollouts'],
  ['/legions', 'Legions', 'LegionService/ListLegions'],
  ['/empire-dates', 'Empire dates', 'EmpireDateService/ListEmpireDates'],
  ['/tokens', 'Tokens', 'DaemonTokenService/ListDaemonTokens'],
  ['/logs', 'Logs', 'LogService/ListLogs'],
  ['/audit', 'Audit', 'AuditService/ListAuditEvents'],
  ['/keys', 'Keys', 'DataKeyService/RotateDataKey'],
] as const;

// The resource pages, each one component (a route's component must not be made anew on each render).
const DevicesListPage = () => <ResourceListPage r={devices} />;
const AccountsListPage = () => <ResourceListPage r={accounts} />;
const AccountPage = () => <ResourcePage r={accounts} />;
const LegionsListPage = () => <ResourceListPage r={legions} />;
const LegionPage = () => <ResourcePage r={legions} />;
const EmpireDatesListPage = () => <ResourceListPage r={empireDates} />;
const EmpireDatePage = () => <ResourcePage r={empireDates} />;

/** `/`: the fleet, or for a role that may not see it (a token-issuer) the first page it may. */
function Home() {
  const may = useMay();
  const { route } = useLocation();
  const first = MENU.find(([, , method]) => may(method));
  useEffect(() => {
    if (first && first[0] !== '/') route(first[0], true);
  }, []);
  return first?.[0] === '/' ? <FleetPage /> : first ? null : <p>Your roles allow no page of this console. Ask for the viewer or admin role.</p>;
}

/** The console's frame: the menu, the pages, the signed-in operator and sign-out, the toasts. */
function App({ operator }: { operator: Operator }) {
  const may = (method: string) => operator.methods.includes(`/titanbot.admin.v1.${method}`);
  return (
    <OperatorContext.Provider value={operator}>
      <LocationProvider>
        <Toasts>
        <header class="container-fluid">
          <nav aria-label="Main">
            <ul class="menu">
              <li>
                <strong>Titanbot console</strong>
              </li>
              {MENU.filter(([, , method]) => may(method)).map(([href, label]) => (
                <li key={href}>
                  <a href={href}>{label}</a>
                </li>
              ))}
            </ul>
            <ul>
              <li>
                <span data-testid="operator">
                  {operator.name} ({operator.roles.join(', ') || 'no role'})
                </span>
              </li>
              <li>
                <form method="post" action="/auth/logout" class="sign-out">
                  <button type="submit" class="secondary outline">
                    Sign out
                  </button>
                </form>
              </li>
            </ul>
          </nav>
        </header>
        <main class="container-fluid">
          <Router>
            <Route path="/" component={Home} />
            <Route path="/devices" component={DevicesListPage} />
            <Route path="/devices/:uuid" component={DevicePage} />
            <Route path="/accounts" component={AccountsListPage} />
            <Route path="/accounts/:uuid" component={AccountPage} />
            <Route path="/legions" component={LegionsListPage} />
            <Route path="/legions/:uuid" component={LegionPage} />
            <Route path="/empire-dates" component={EmpireDatesListPage} />
            <Route path="/empire-dates/:uuid" component={EmpireDatePage} />
            <Route path="/habits" component={HabitsPage} />
            <Route path="/habits/new" component={NewHabitPage} />
            <Route path="/habits/:uuid" component={HabitPage} />
            <Route path="/rollouts" component={RolloutsPage} />
            <Route path="/rollouts/:uuid" component={RolloutPage} />
            <Route path="/tokens" component={TokensPage} />
            <Route path="/logs" component={LogsPage} />
            <Route path="/audit" component={AuditPage} />
            <Route path="/keys" component={KeysPage} />
            <Route default component={NotFound} />
          </Router>
        </main>
        </Toasts>
      </LocationProvider>
    </OperatorContext.Provider>
  );
}

const NotFound = () => (
  <>
    <h1>Not found</h1>
    <p>
      This page does not exist. Go to the <a href="/">fleet</a>.
    </p>
  </>
);

const root = document.getElementById('app')!;
// null: the console did not answer (undefined: it did, without a session).
const operator = await loadOperator().catch(() => null);
if (operator) render(<App operator={operator} />, root);
else if (operator === undefined) location.assign(signInUrl());
else render(<main class="container"><p role="alert">The console did not answer. Reload the page to try again.</p></main>, root);
