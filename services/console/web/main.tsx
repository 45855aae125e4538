import '@picocss/pico/css/pico.min.css';
import './style.css';
import { render } from 'preact';
import { LocationProvider, Route, Router } from 'preact-iso';
import { signInUrl } from './api';
import { AuditPage } from './audit';
import { DevicePage } from './device';
import { FleetPage } from './fleet';
import { HabitPage, HabitsPage } from './habits';
import { loadOperator, OperatorContext, type Operator } from './session';

/** The console's frame: the pages, the signed-in operator and sign-out. */
function App({ operator }: { operator: Operator }) {
  return (
    <OperatorContext.Provider value={operator}>
      <LocationProvider>
        <header class="container-fluid">
          <nav aria-label="Main">
            <ul>
              <li>
                <strong>Titanbot console</strong>
              </li>
              <li>
                <a href="/">Fleet</a>
              </li>
              <li>
                <a href="/habits">Habits</a>
              </li>
              <li>
                <a href="/audit">Audit</a>
              </li>
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
            <Route path="/" component={FleetPage} />
            <Route path="/devices/:uuid" component={DevicePage} />
            <Route path="/habits" component={HabitsPage} />
            <Route path="/habits/:uuid" component={HabitPage} />
            <Route path="/audit" component={AuditPage} />
            <Route default component={NotFound} />
          </Router>
        </main>
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
